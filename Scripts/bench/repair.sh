#!/usr/bin/env bash
# How long the protected ports are unguarded when someone else removes a *watched* table (kernels
# without nftables table ownership, or --table-protection watch): one command, needs root,
# everything inside a network namespace this script creates.
#
#   Scripts/bench/repair.sh [RUNS]        (default 200 runs of each command)
#
# Builds pknockd (release), runs it in watch mode in a fresh namespace, and times with
# Scripts/bench/repair.py (an nf_tables notification listener) from `nft delete table` and from
# `nft flush ruleset` to the table being back. On kernels with ownership (Linux ≥ 6.9) the
# default mode never needs a repair: those commands cannot touch the table.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/opt/swift/usr/bin"
[ "$(id -u)" = 0 ] || { echo "repair bench: needs root (network namespaces)"; exit 1; }
RUNS=${1:-200}
swift build -c release --product pknockd >/dev/null || { echo "repair bench: build failed"; exit 1; }
PKNOCKD="$(swift build -c release --show-bin-path)/pknockd"
NS="pk-repair-$$"
WORK=$(mktemp -d /tmp/pknock-repair.XXXXXX)
DAEMON=""
cleanup() {
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
cat > "$WORK/pknock.toml" <<CONF
[daemon]
table = "pkrepair"
nflog_group = 29
state_directory = "$WORK/state"
control_socket = "$WORK/control.sock"

[[rule]]
name = "SSH"
knock = [2002, 2001, 2004]
strict = true
time = 10
autoclose = 60
protect = [22]

[[rule]]
name = "WEB"
knock = [7000, 7001]
autoclose = 600
protect = [443, 8443]
CONF
ip netns exec "$NS" "$PKNOCKD" --config "$WORK/pknock.toml" --table-protection watch >"$WORK/log" 2>&1 &
DAEMON=$!
for _ in $(seq 1 100); do grep -q "pknockd started" "$WORK/log" && break; sleep 0.05; done
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
for command in "nft delete table inet pkrepair" "nft flush ruleset"; do
    echo "=== $command, $RUNS runs"
    ip netns exec "$NS" python3 Scripts/bench/repair.py pkrepair "$RUNS" $command | tail -1
done
