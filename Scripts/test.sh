#!/usr/bin/env bash
# The whole test suite, as CI runs it: unit tests, the etcd client against a real etcd, root-only kernel tests in a private network
# namespace, the end-to-end namespace tests, the nft goldens against real nft, swift format lint,
# and the Debian packages (built, installed, tested end to end with /opt/swift hidden, purged).
# Run as root on Debian:
#
#   Scripts/test.sh
#
# Installs missing Debian packages first. Prints each stage's summary and a last line
# "tests: N passed, N failed"; exits non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"

Scripts/install-deps.sh || exit 1

passed=0
failed=0
stage_failed=()
stage_times=()

# count_swift_testing LOG: adds a Swift Testing run's passed/failed test counts to the totals.
count_swift_testing() {
    local total failures
    total=$(grep -E '(✔|✘) Test run with [0-9]+ tests?' "$1" | tail -1 | sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/')
    failures=$(grep -E '^✘ Test [^r]' "$1" | grep -c -E 'failed after' || true)
    total=${total:-0}
    passed=$((passed + total - failures))
    failed=$((failed + failures))
}

run_stage() {
    local name=$1; shift
    local log="$LOGS/$name.log"
    local started=$SECONDS
    echo "=== $name: $*"
    "$@" 2>&1 | tee "$log"
    local status=${PIPESTATUS[0]}
    if [[ $status != 0 ]]; then stage_failed+=("$name (exit $status)"); fi
    stage_times+=("$name $((SECONDS - started)) s")
    return $status
}

LOGS=$(mktemp -d /tmp/pknock-test-logs.XXXXXX)

if ! run_stage build swift build --build-tests; then
    echo "tests: 0 passed, 1 failed (the build failed)"
    exit 1
fi

run_stage unit swift test --skip-build --parallel
count_swift_testing "$LOGS/unit.log"

# The etcd client against a real etcd on loopback (started and stopped by the tests, by PID): on its
# own, because the unit stage's CPU-heavy tests starve these async tests of the cooperative pool.
run_stage fleet-etcd env PKNOCK_ETCD_TESTS=1 swift test --skip-build --filter FleetEtcdSystemTests
count_swift_testing "$LOGS/fleet-etcd.log"

run_stage fuzz Scripts/fuzz.sh 20

run_stage system Scripts/test-system.sh
count_swift_testing "$LOGS/system.log"

run_stage unit-file Docs/systemd/verify.sh "$(swift build --show-bin-path)"

run_stage e2e Scripts/netns-e2e.sh "$(swift build --show-bin-path)"
e2e=$(grep -E '^netns-e2e: [0-9]+ passed, [0-9]+ failed' "$LOGS/e2e.log" | tail -1)
if [[ -n "$e2e" ]]; then
    passed=$((passed + $(echo "$e2e" | sed -E 's/.* ([0-9]+) passed.*/\1/')))
    failed=$((failed + $(echo "$e2e" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
fi

# The FirewallLayout goldens against the real nft, on a copy of testdata/ (needs root).
run_stage nft-goldens Scripts/check-nft-goldens.sh

# Formatting and the lint rules of .swift-format (Tests/.swift-format relaxes two for tests).
run_stage lint swift format lint --strict --recursive --parallel Sources Tests

# The Debian packages: built (release, static Swift runtime, scratch path .build-deb), installed,
# the end-to-end tests again against the installed binaries with /opt/swift hidden, then purged.
DEB_DIR=$(mktemp -d /tmp/pknock-debs.XXXXXX)
if run_stage deb Scripts/package/build-deb.sh "$DEB_DIR"; then
    run_stage deb-e2e Scripts/package/test-deb.sh "$DEB_DIR"
    deb=$(grep -E '^test-deb: [0-9]+ passed, [0-9]+ failed' "$LOGS/deb-e2e.log" | tail -1)
    if [[ -n "$deb" ]]; then
        passed=$((passed + $(echo "$deb" | sed -E 's/.* ([0-9]+) passed.*/\1/')))
        failed=$((failed + $(echo "$deb" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
    fi
fi
rm -rf "$DEB_DIR"

echo
echo "stage times: $(printf '%s, ' "${stage_times[@]}")total $SECONDS s"
for stage in "${stage_failed[@]}"; do echo "FAILED stage: $stage"; done
if ((${#stage_failed[@]})) && ((failed == 0)); then failed=${#stage_failed[@]}; fi
echo "tests: $passed passed, $failed failed"
((${#stage_failed[@]} == 0 && failed == 0))
