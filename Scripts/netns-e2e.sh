#!/usr/bin/env bash
# End-to-end tests of pknockd on the real kernel, in network namespaces this script creates and
# removes (topology in Scripts/lib/netns.sh). Real knock packets from the client namespaces, real
# TCP connections to the protected ports. Needs root; prints "N passed, N failed" and exits non-zero
# on any failure.
#
#   Scripts/netns-e2e.sh [BIN_DIR] [PATTERN]   (default: swift build --show-bin-path; all files)
#
# The scenarios live in Scripts/e2e/*.sh, sourced in name order (only those matching PATTERN when
# given). Each starts scenarios with `scenario NAME` (clean slate: no pknockd, none of our tables)
# and checks with `expect open|closed NS HOST PORT WHAT`, `expect_log TEXT WHAT`, `pass`, `fail`.
# Shared fixtures: $CONFIG (rules SSH, FTP, SHORT; table pknock_e2e, NFLOG group 17), secrets in
# $PK_WORK/secrets, `write_config EXTRA_TOML`, `knock NS ARGS...` (pknock knock).
set -u
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    if [ "${CI:-}" = true ]; then echo "netns-e2e: needs root (CI runs as root)"; exit 1; fi
    echo "netns-e2e: skipped: needs root to create network namespaces"; exit 0
fi

BIN=${1:-$(swift build --show-bin-path)}
PATTERN=${2:-}
PKNOCKD="$BIN/pknockd"
PKNOCK="$BIN/pknock"
for tool in "$PKNOCKD" "$PKNOCK"; do
    [ -x "$tool" ] || { echo "netns-e2e: $tool not built"; exit 1; }
done
source Scripts/lib/netns.sh

PASSED=0
FAILED=0
FAILURES=()
pass() { PASSED=$((PASSED + 1)); echo "  ok   $1"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$CURRENT: $1"); echo "  FAIL $1"; }
# scenario NAME: starts a scenario from a clean slate: no pknockd, none of our tables, no saved state.
scenario() {
    CURRENT=$1
    echo "== $1"
    stop_daemon
    rm -rf "$PK_WORK/state"   # the SPA replay memory of earlier scenarios
    s nft list tables 2>/dev/null | while read -r _ family table; do s nft delete table "$family" "$table"; done
}

# expect open|closed NS HOST PORT WHAT
# "open" tries up to four times (a loaded machine may apply a grant a little after the knock
# returns); "closed" is one probe, as a retry could only hide a port that was open.
expect() {
    local tries=1
    [ "$1" = open ] && tries=4
    for _ in $(seq 1 "$tries"); do
        if can_reach "$2" "$3" "$4"; then
            [ "$1" = open ] && pass "$5" || fail "$5 (expected closed, was open)"
            return
        fi
    done
    [ "$1" = closed ] && pass "$5" || fail "$5 (expected open, was closed)"
}

knock() { local ns=$1; shift; ip netns exec "$ns" "$PKNOCK" knock "$@" --delay 10; }

# within_one_minute SECONDS: returns once the wall clock has at least SECONDS left in this minute
# (sleeping into the next one if not), for checks that two fresh SPA v1 packets share a minute.
within_one_minute() {
    local second=$((10#$(date +%S)))
    [ $((60 - second)) -ge "$1" ] || sleep $((61 - second))
}

# expect_log TEXT WHAT: pknockd's log (since start) contains TEXT.
expect_log() {
    local deadline=$((SECONDS + 3))
    while [ $SECONDS -lt $deadline ]; do
        grep -qF "$1" "$PK_WORK/pknockd.log" && { pass "$2"; return; }
        sleep 0.1
    done
    fail "$2 (log lacks '$1')"
}

netns_up
start_service 22 21 2222 8080

mkdir -p "$PK_WORK/secrets"
( umask 077
  printf 'open-sesame-4000\n' > "$PK_WORK/secrets/ftp.open"
  printf 'close-sesame-4000\n' > "$PK_WORK/secrets/ftp.close"
  printf 'not-the-secret\n' > "$PK_WORK/secrets/wrong" )

write_config() {
    ( umask 077; cat > "$PK_WORK/pknock.toml" <<CONF
[daemon]
table = "pknock_e2e"
nflog_group = 17
state_directory = "$PK_WORK/state"
control_socket = "$PK_WORK/control.sock"

[[rule]]
name = "SSH"
knock = [2002, 2001, 2004]
time = 3
strict = true
autoclose = 60
protect = [22]

[[rule]]
name = "FTP"
knock = ["4000:udp"]
open_secret_file = "secrets/ftp.open"
close_secret_file = "secrets/ftp.close"
autoclose = "10m"
protect = [21]

[[rule]]
name = "SHORT"
knock = ["3000:udp"]
autoclose = "2s"
protect = [2222]
$1
CONF
    )
}
write_config ""
CONFIG="$PK_WORK/pknock.toml"

for file in Scripts/e2e/*.sh; do
    [[ -z "$PATTERN" || "$file" == *"$PATTERN"* ]] || continue
    source "$file"
done
stop_daemon

echo
for failure in "${FAILURES[@]}"; do echo "FAILED: $failure"; done
if [ "$FAILED" != 0 ]; then echo "--- pknockd log ---"; cat "$PK_WORK/pknockd.all.log"; fi
echo "netns-e2e: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
