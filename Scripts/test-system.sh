#!/usr/bin/env bash
# Runs the root-only NetfilterSystemTests against the real kernel, inside a private network
# namespace that lives only as long as this script (nothing persists, the host's firewall is
# never touched).
#
#   Scripts/test-system.sh [--build] [swift test options…]
#
#   --build        build the tests first (outside the namespace), with the same --scratch-path
#   other options  passed to `swift test`, e.g. `--scratch-path .build-x` or another
#                  `--filter KnockDaemonSystemTests` (filters are OR-ed with NetfilterSystemTests)
#
# How: re-executes itself under `unshare --net`, brings lo up, exports
# KNOCK_SYSTEM_TESTS_NETNS=<inode of that namespace> (the tests' gate checks it against
# /proc/self/ns/net) and runs `swift test --skip-build --filter NetfilterSystemTests`.
# Not root: prints "skipping system tests: needs root" and exits 0, or 1 when CI=true.
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ "$(id -u)" != 0 ]]; then
    echo "skipping system tests: needs root"
    if [[ "${CI:-}" == "true" ]]; then exit 1; fi
    exit 0
fi

if [[ "${PKNOCK_TEST_SYSTEM_INSIDE_NETNS:-}" != 1 ]]; then
    build=0
    args=()
    scratch=()
    while (($#)); do
        case "$1" in
            --build) build=1 ;;
            --scratch-path) scratch=(--scratch-path "$2"); args+=("$1" "$2"); shift ;;
            --scratch-path=*) scratch=("$1"); args+=("$1") ;;
            *) args+=("$1") ;;
        esac
        shift
    done
    if ((build)); then
        echo "+ swift build --build-tests ${scratch[*]}"
        swift build --build-tests "${scratch[@]}"
    fi
    echo "+ unshare --net -- $0 ${args[*]}"
    PKNOCK_TEST_SYSTEM_INSIDE_NETNS=1 exec unshare --net -- "$0" "${args[@]}"
fi

echo "+ ip link set lo up"
ip link set lo up
netns="$(readlink /proc/self/ns/net)"   # net:[4026532177]
netns="${netns#net:[}"
netns="${netns%]}"
export KNOCK_SYSTEM_TESTS_NETNS="$netns"
echo "+ export KNOCK_SYSTEM_TESTS_NETNS=$netns"
# One test at a time: the suites share this namespace's ruleset (one of them runs `nft flush
# ruleset`, another counts the netlink sockets it opens), so parallel suites would disturb each other.
echo "+ swift test --skip-build --no-parallel --filter NetfilterSystemTests $*"
exec swift test --skip-build --no-parallel --filter NetfilterSystemTests "$@"
