#!/usr/bin/env bash
# PortKnockO memory benchmark (issue #14), in network namespaces this script creates and removes
# (Scripts/lib/netns.sh; documentation addresses only). Needs root. One command:
#
#   Scripts/bench/memory.sh [quick]
#
# 1. idle: pknockd started with examples/pknock.toml (state and control paths moved into the
#    scratch directory, nothing else changed); VmRSS and its split by mapping (/proc/PID/smaps:
#    the binary, each shared library, heap, stacks, anonymous maps), 3 s after start (pknockd
#    drops the pages only start-up touched at 2 s), then again after a knock sequence and a status;
# 2. later-stage peers: a rule without a time limit and max_tracked_peers = 2,000,000; N spoofed
#    IPv6 sources knock the first port (they land in the first-knock table), RSS is read, then the
#    same N sources knock the second port (each becomes a tracked later-stage peer), RSS is read
#    again: bytes per peer = the difference / N. pknockd's packet count at the end must be twice the
#    sources (no knock lost), or the figure is marked.
# BENCH_PKNOCKD=PATH uses that pknockd instead of building one (e.g. an older commit's, to compare).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/opt/swift/usr/bin"
[ "$(id -u)" = 0 ] || { echo "memory bench: needs root (network namespaces)"; exit 1; }
QUICK=${1:-}
SCRATCH=${BENCH_SCRATCH_PATH:-.build}
EXAMPLES=$(pwd)/examples

if [ -n "${BENCH_PKNOCKD:-}" ]; then
    PKNOCKD=$BENCH_PKNOCKD
else
    swift build --scratch-path "$SCRATCH" -c release --product pknockd >/dev/null || { echo "memory bench: build failed"; exit 1; }
    PKNOCKD="$(swift build --scratch-path "$SCRATCH" -c release --show-bin-path)/pknockd"
fi
source Scripts/lib/netns.sh
FLOOD="$PK_WORK/pk-flood"
cc -O2 -o "$FLOOD" Scripts/bench/flood.c || exit 1

netns_up
SERVER_MAC=$(s cat /sys/class/net/pkB$$/address)
CLIENT_MAC=$(b cat /sys/class/net/eth0/address)

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status"; }
# flood COUNT PPS SECONDS FIRST_INDEX PORT: spoofed TCP knocks from client B's namespace.
flood() {
    ip netns exec "$NS_B" "$FLOOD" eth0 "$SERVER_MAC" "$CLIENT_MAC" 2001:db8:2::1 "$5" "$1" "$2" "$3" tcp "$4"
}

echo "=== machine: $(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "=== pknockd: $PKNOCKD ($(stat -c %s "$PKNOCKD") bytes)"

echo
echo "=== 1. idle RSS with examples/pknock.toml"
mkdir -p "$PK_WORK/example/secrets"
cp "$EXAMPLES"/secrets/* "$PK_WORK/example/secrets/"
chmod 600 "$PK_WORK/example/secrets/"*
sed -e "s|^state_directory = .*|state_directory = \"$PK_WORK/state\"|" \
    -e "s|^control_socket = .*|control_socket = \"$PK_WORK/control.sock\"|" \
    "$EXAMPLES/pknock.toml" > "$PK_WORK/example/pknock.toml"
start_daemon --config "$PK_WORK/example/pknock.toml" || exit 1
# pknockd drops start-up's code pages 2 s after start (MemoryTuning.releaseStartupPages).
sleep 3
echo "VmRSS $(rss_kib) KiB  (threads: $(ls /proc/$DAEMON_PID/task | wc -l)); high-water mark (start-up) $(awk '/^VmHWM/ {print $2}' "/proc/$DAEMON_PID/status") KiB"
grep -E '^(VmRSS|RssAnon|RssFile|RssShmem)' "/proc/$DAEMON_PID/status" | tr -s ' ' | paste -sd' '
# Then some work: the SSH rule's knock sequence from client A, a wrong knock, and `pknock status`.
for port in 2002 2001 2004 3000; do a python3 "$PK_SCRIPTS/lib/tcp.py" probe 192.0.2.1 "$port" 0.2 >/dev/null 2>&1; done
"${PKNOCK:-$(dirname "$PKNOCKD")/pknock}" status --control-socket "$PK_WORK/control.sock" >/dev/null 2>&1 || true
sleep 1
echo "VmRSS after a knock sequence and a status request: $(rss_kib) KiB"
# Rss by mapping: named files by basename, anonymous maps as [anon], with the biggest first.
awk '
    /^[0-9a-f]+-[0-9a-f]+ / { name = (NF >= 6) ? $6 : "[anon]"; sub(".*/", "", name); next }
    /^Rss:/ { rss[name] += $2 }
    END { for (n in rss) if (rss[n] > 0) printf "%8d KiB  %s\n", rss[n], n }
' "/proc/$DAEMON_PID/smaps" | sort -rn
stop_daemon

echo
echo "=== 2. later-stage peers (2nd correct knock; rule without time, max_tracked_peers = 2000000)"
cat > "$PK_WORK/peers.toml" <<CONF
[daemon]
table = "pkmem"
nflog_group = 28
first_knock_capacity = 2097152
state_directory = "$PK_WORK/state"
control_socket = "$PK_WORK/control.sock"

[[rule]]
name = "SEQ"
knock = [2002, 2001, 2004]
autoclose = 60
max_tracked_peers = 2000000
protect = [22]
CONF
if [ "$QUICK" = quick ]; then STEPS=(10000 100000); else STEPS=(10000 100000 1000000); fi
start_daemon --config "$PK_WORK/peers.toml" || exit 1
# Past the release of start-up's pages (2 s after start), which would otherwise land inside a step.
sleep 3
printf '%-10s %12s %12s %14s\n' peers rss_first_kib rss_later_kib bytes/peer
done_sources=0
for target in "${STEPS[@]}"; do
    n=$((target - done_sources))
    flood "$n" 50000 60 "$done_sources" 2002 >/dev/null
    sleep 1
    first=$(rss_kib)
    flood "$n" 50000 60 "$done_sources" 2001 >/dev/null
    sleep 1
    later=$(rss_kib)
    printf '%-10s %12s %12s %14s\n' "$target" "$first" "$later" "$(( (later - first) * 1024 / n ))"
    done_sources=$target
done
stop_daemon
line=$(grep "pknockd stopping" "$PK_WORK/pknockd.all.log" | tail -1)
processed=$(echo "$line" | grep -o ' packets=[0-9]*' | cut -d= -f2)
enobufs=$(echo "$line" | grep -o 'nflog.enobufs=[0-9]*' | cut -d= -f2)
echo "pknockd processed $processed packets of $((2 * done_sources)) sent, enobufs=$enobufs$([ "$processed" = $((2 * done_sources)) ] || echo '  (KNOCKS LOST: bytes/peer is an upper bound of a smaller count)')"
echo "(bytes/peer: growth of RSS from the first-knock stage to the later stage, over the sources of that step)"
