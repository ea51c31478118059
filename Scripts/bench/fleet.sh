#!/usr/bin/env bash
# Fleet benchmark (issue #16): a knock at gateway A until the protected port accepts at gateway B,
# through a 3-member etcd cluster, all in namespaces of Scripts/lib/fleet.sh. Prints the machine,
# p50/p90/p99 of knock→open-at-B over RUNS runs, and A's commit latency
# (pknock_fleet_commit_latency_seconds: the grant Txn as pknockd timed it). Needs root and etcd.
#
#   Scripts/bench/fleet.sh [BIN_DIR] [RUNS] [lone]   (default: swift build -c release --show-bin-path; 200)
#
# With "lone", the gateways run without [fleet] and only knock→open at A is measured: the baseline.
set -u
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "bench/fleet: needs root (network namespaces)"; exit 1; }
BIN=${1:-$(swift build -c release --show-bin-path)}
RUNS=${2:-200}
LONE=${3:-}
FLEET_PKNOCKD="$BIN/pknockd"
FLEET_PKNOCK="$BIN/pknock"
for tool in "$FLEET_PKNOCKD" "$FLEET_PKNOCK"; do [ -x "$tool" ] || { echo "bench/fleet: $tool not built"; exit 1; }; done
source Scripts/lib/fleet.sh
[ -n "$FLEET_ETCD" ] || { echo "bench/fleet: etcd not installed (Scripts/install-deps.sh)"; exit 1; }

fleet_up
etcd_up || exit 1
RULES='
[[rule]]
name = "SSH"
knock = [2002, 2001, 2004]
time = 5
autoclose = "60s"
protect = [22]'
for g in A B C; do
    if [ "$LONE" = lone ]; then gateway_config "$g" "$RULES" -; else gateway_config "$g" "$RULES"; fi
    gateway_service "$g" 22
    gateway_start "$g" || exit 1   # info: "pknockd started" is an info line
done
for _ in $(seq 1 50); do
    gateway_ctl A status 2>/dev/null | grep -q '^fleet: .*connected' && break
    sleep 0.1
done

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r), etcd $("$FLEET_ETCD" --version | sed -n 's/^etcd Version: //p')"
echo "pknockd: $FLEET_PKNOCKD"
WATCHER=$FLEET_NS_B
[ "$LONE" = lone ] && WATCHER=$FLEET_NS_A
RESET="ip netns exec $FLEET_NS_A $FLEET_PKNOCK close --control-socket $FLEET_WORK/A/control.sock SSH $FLEET_CLIENT_IP >/dev/null 2>&1
for _ in \$(seq 1 300); do
    ip netns exec $WATCHER nft list set inet pknock_fleet SSH_allowed4 | grep -qw $FLEET_CLIENT_IP || exit 0
    sleep 0.01
done"
if [ "$LONE" = lone ]; then
    echo "lone gateways (no [fleet]): knock at A (${FLEET_IP[A]}) -> TCP 22 accepts at A, $RUNS runs:"
    fx client python3 Scripts/bench/latency.py --probe-host "${FLEET_IP[A]}" --interval-us 200 --give-up 3 "${FLEET_IP[A]}" "$RUNS" 22 2002 2001 2004 \
        -- bash -c "$RESET" > "$FLEET_WORK/latency-a.txt"
    tail -1 "$FLEET_WORK/latency-a.txt" | sed 's/^/knock->open at A (us): /'
    exit 0
fi
echo "knock at A (${FLEET_IP[A]}) -> TCP 22 accepts at B (${FLEET_IP[B]}), $RUNS runs:"
fx client python3 Scripts/bench/latency.py --probe-host "${FLEET_IP[B]}" --interval-us 200 --give-up 3 "${FLEET_IP[A]}" "$RUNS" 22 2002 2001 2004 \
    -- bash -c "$RESET" > "$FLEET_WORK/latency.txt"
tail -1 "$FLEET_WORK/latency.txt" | sed 's/^/knock->open at B (us): /'
# The same knock probed at A itself: A applies the grant once its Txn committed, B after the watch.
fx client python3 Scripts/bench/latency.py --probe-host "${FLEET_IP[A]}" --interval-us 200 --give-up 3 "${FLEET_IP[A]}" "$RUNS" 22 2002 2001 2004 \
    -- bash -c "$RESET" > "$FLEET_WORK/latency-a.txt"
tail -1 "$FLEET_WORK/latency-a.txt" | sed 's/^/knock->open at A itself (us): /'
echo "A's commit latency (pknock_fleet_commit_latency_seconds):"
gateway_metrics A | python3 -c '
import sys
buckets, total, count = [], 0.0, 0
for line in sys.stdin:
    if line.startswith("pknock_fleet_commit_latency_seconds_bucket"):
        bound = line.split("le=\"")[1].split("\"")[0]
        buckets.append((float("inf") if bound == "+Inf" else float(bound), int(float(line.split()[-1]))))
    elif line.startswith("pknock_fleet_commit_latency_seconds_sum"):
        total = float(line.split()[-1])
    elif line.startswith("pknock_fleet_commit_latency_seconds_count"):
        count = int(float(line.split()[-1]))
if not count:
    print("  no commits counted"); sys.exit()
def quantile(q):
    for bound, cumulative in buckets:
        if cumulative >= q * count:
            return bound
print(f"  count={count} mean={total / count * 1e3:.2f} ms p50<={quantile(0.5) * 1e3:g} ms p99<={quantile(0.99) * 1e3:g} ms (bucket bounds)")'
for g in A B C; do
    echo "$g: $(gateway_ctl "$g" status 2>/dev/null | grep '^fleet:')"
done
