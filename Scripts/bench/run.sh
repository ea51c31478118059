#!/usr/bin/env bash
# PortKnockO benchmark: pknockd under floods, in network namespaces this script creates and removes
# (topology in Scripts/lib/netns.sh; documentation addresses only). Needs root. One command:
#
#   Scripts/bench/run.sh [quick]
#
# Builds pknockd in release mode and the flood sender (Scripts/bench/flood.c, with cc), then
# measures and prints, as described in BENCHMARKS.md:
#   1. throughput: spoofed first knocks sent vs counted by the kernel vs processed by pknockd
#      (its counters at SIGTERM), NFLOG ENOBUFS, and pknockd CPU time per knock, at fixed rates
#      and at the sender's maximum;
#   2. memory: pknockd RSS with 0, 10k, 100k and 1M tracked peers (bytes per peer), and with the
#      default cap under a 2M-source flood (bounded by configuration);
#   3. latency: last knock → protected port accepting, p50/p90/p99, idle and under a flood;
#   4. the legitimate client (a sequence and an SPA) during a flood of spoofed first knocks from
#      ≥ 1M distinct IPv6 sources (2001:db8:ff00::/40), several runs.
# Every flood is bounded in count and time. `quick` shrinks counts for a smoke run.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/opt/swift/usr/bin"
[ "$(id -u)" = 0 ] || { echo "bench: needs root (network namespaces)"; exit 1; }
QUICK=${1:-}
SCRATCH=${BENCH_SCRATCH_PATH:-.build}

echo "=== building pknockd (release) and the flood sender"
swift build --scratch-path "$SCRATCH" -c release --product pknockd >/dev/null || { echo "bench: build failed"; exit 1; }
BIN=$(swift build --scratch-path "$SCRATCH" -c release --show-bin-path)
PKNOCKD="$BIN/pknockd"
source Scripts/lib/netns.sh
FLOOD="$PK_WORK/pk-flood"
cc -O2 -o "$FLOOD" Scripts/bench/flood.c || exit 1
LATENCY="$PK_SCRIPTS/bench/latency.py"

netns_up
start_service 22 21 8080
SERVER_MAC=$(s cat /sys/class/net/pkB$$/address)
CLIENT_MAC=$(b cat /sys/class/net/eth0/address)
TABLE=pkbench
mkdir -p "$PK_WORK/secrets"
( umask 077; printf 'bench-open-secret\n' > "$PK_WORK/secrets/open"; printf 'bench-close-secret\n' > "$PK_WORK/secrets/close" )

# write_config MAX_TRACKED TIME: SEQ (2002,2001,2004 → 22, the flooded rule), SPA (4000/udp → 21),
# LAT (6001,6002 → 8080, for latency runs). TIME "" means no time limit between knocks.
write_config() {
    local time_line=""
    [ -n "$2" ] && time_line="time = $2"
    cat > "$PK_WORK/bench.toml" <<CONF
[daemon]
table = "$TABLE"
nflog_group = 27
max_tracked_peers = $1

[[rule]]
name = "SEQ"
knock = [2002, 2001, 2004]
$time_line
autoclose = 60
protect = [22]

[[rule]]
name = "SPA"
knock = ["4000:udp"]
open_secret_file = "secrets/open"
close_secret_file = "secrets/close"
autoclose = 60
protect = [21]

[[rule]]
name = "LAT"
knock = [6001, 6002]
time = 10
autoclose = 60
protect = [8080]
CONF
}

# A separate table counts what reaches the input hook before pknock's chain (priority -20 < -10).
s nft -f - <<'NFT'
table inet pkbench_count {
    chain input {
        type filter hook input priority -20; policy accept;
        tcp dport 2002 counter
    }
}
NFT
# The counter only grows; each measurement takes the difference from a mark.
kernel_total() { s nft list table inet pkbench_count | grep -o 'packets [0-9]*' | head -1 | cut -d' ' -f2; }
reset_kernel_count() { KERNEL_MARK=$(kernel_total); }
kernel_count() { echo $(($(kernel_total) - KERNEL_MARK)); }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status"; }
TICKS=$(getconf CLK_TCK)

# stop_and_count: stops pknockd (in this shell, so it can wait) and sets PROCESSED and ENOBUFS from
# the counters it logs when stopping.
stop_and_count() {
    stop_daemon
    local line
    line=$(grep "pknockd stopping" "$PK_WORK/pknockd.all.log" | tail -1)
    PROCESSED=$(echo "$line" | grep -o ' packets=[0-9]*' | cut -d= -f2)
    ENOBUFS=$(echo "$line" | grep -o 'nflog.enobufs=[0-9]*' | cut -d= -f2)
}

# flood COUNT PPS SECONDS [FIRST_INDEX] [tcp|udp] [PORT]: spoofed knocks from client B's namespace.
flood() {
    ip netns exec "$NS_B" "$FLOOD" eth0 "$SERVER_MAC" "$CLIENT_MAC" 2001:db8:2::1 "${6:-2002}" "$1" "$2" "$3" "${5:-tcp}" "${4:-0}"
}

sed_field() { echo "$1" | grep -o "$2=[0-9.]*" | cut -d= -f2; }

if [ "$QUICK" = quick ]; then N_FLOOD=200000; N_MEM=(10000 100000); N_LAT=50; N_LEGIT=1; SOURCES=300000
else N_FLOOD=2000000; N_MEM=(10000 100000 1000000); N_LAT=300; N_LEGIT=5; SOURCES=1500000; fi

echo
echo "=== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"

echo
echo "=== 1. throughput: spoofed first knocks (TCP SYN to 2002, IPv6, distinct sources)"
printf '%-10s %10s %10s %10s %10s %8s %10s %12s\n' rate sent kernel pknockd lost enobufs sent_pps cpu_us/knock
write_config 65536 10
for rate in 50000 100000 160000 0; do
    start_daemon --config "$PK_WORK/bench.toml" || exit 1
    reset_kernel_count
    before=$(cpu_ticks)
    seconds=$((N_FLOOD / 100000 + 2)); [ "$rate" != 0 ] && seconds=3
    count=$N_FLOOD; [ "$rate" != 0 ] && count=$((rate * 3))
    out=$(flood "$count" "$rate" "$seconds")
    sleep 1
    after=$(cpu_ticks)
    kernel=$(kernel_count)
    stop_and_count; processed=$PROCESSED; enobufs=$ENOBUFS
    sent=$(sed_field "$out" sent)
    cpu_us=$(awk -v t=$((after - before)) -v hz="$TICKS" -v n="$processed" 'BEGIN { printf "%.2f", n ? t / hz * 1e6 / n : 0 }')
    printf '%-10s %10s %10s %10s %10s %8s %10s %12s\n' "${rate/#0/max}" "$sent" "$kernel" "$processed" \
        $((kernel - processed)) "$enobufs" "$(sed_field "$out" pps)" "$cpu_us"
done

echo
echo "=== 2. memory: pknockd RSS by tracked peers (no time limit, cap 2,000,000)"
write_config 2000000 ""
start_daemon --config "$PK_WORK/bench.toml" || exit 1
sleep 0.3
rss0=$(rss_kib)
printf '%-10s %10s %14s\n' peers rss_kib bytes/peer
printf '%-10s %10s %14s\n' 0 "$rss0" -
done_sources=0
for target in "${N_MEM[@]}"; do
    flood $((target - done_sources)) 100000 30 "$done_sources" >/dev/null
    done_sources=$target
    sleep 1
    rss=$(rss_kib)
    printf '%-10s %10s %14s\n' "$target" "$rss" "$(( (rss - rss0) * 1024 / target ))"
done
stop_and_count; processed=$PROCESSED; enobufs=$ENOBUFS
echo "(pknockd processed $processed knocks, enobufs=$enobufs; peers tracked = distinct sources processed)"
write_config 65536 10
start_daemon --config "$PK_WORK/bench.toml" || exit 1
flood "$SOURCES" 0 30 >/dev/null
sleep 1
echo "default cap (65,536 per rule) after a $SOURCES-source flood: RSS $(rss_kib) KiB (bounded by the cap, not the flood)"
stop_and_count

echo
echo "=== 3. latency: last knock → protected port accepts (LAT: 6001,6002 → 8080), µs"
RESET=(ip netns exec "$NS_S" nft delete element inet "$TABLE" LAT_allowed4 '{ 192.0.2.2 }')
start_daemon --config "$PK_WORK/bench.toml" || exit 1
echo "idle:          $(a python3 "$LATENCY" 192.0.2.1 "$N_LAT" 8080 6001 6002 -- "${RESET[@]}" | tail -1)"
( exec ip netns exec "$NS_B" "$FLOOD" eth0 "$SERVER_MAC" "$CLIENT_MAC" 2001:db8:2::1 2002 100000000 50000 $((N_LAT / 20 + 10)) tcp 5000000 >/dev/null ) &
FLOOD_PID=$!
sleep 0.5
echo "50k pps flood: $(a python3 "$LATENCY" 192.0.2.1 "$N_LAT" 8080 6001 6002 -- "${RESET[@]}" | tail -1)"
kill "$FLOOD_PID" 2>/dev/null; wait "$FLOOD_PID" 2>/dev/null
stop_and_count

echo
echo "=== 4. legitimate client during a flood of spoofed first knocks ($SOURCES distinct IPv6 sources, sender's max rate)"
got_seq=0; got_spa=0
for run in $(seq 1 "$N_LEGIT"); do
    start_daemon --config "$PK_WORK/bench.toml" || exit 1
    reset_kernel_count
    flood "$SOURCES" 0 30 $((run * 10000000)) > "$PK_WORK/flood.out" &
    FLOOD_PID=$!
    sleep 1
    ip netns exec "$NS_A" python3 - 192.0.2.1 2002 2001 2004 <<'PY'
import socket, sys, time
for port in sys.argv[2:]:
    s = socket.socket(); s.setblocking(False)
    try: s.connect((sys.argv[1], int(port)))
    except BlockingIOError: pass
    s.close(); time.sleep(0.05)
PY
    seq_ok=closed; can_reach "$NS_A" 192.0.2.1 22 && { seq_ok=open; got_seq=$((got_seq + 1)); }
    python3 - "$PK_WORK/secrets/open" 192.0.2.2 > "$PK_WORK/spa.payload" <<'PY'
import hashlib, hmac, socket, struct, sys, time
secret = open(sys.argv[1], 'rb').read().rstrip(b'\n')
message = socket.inet_aton(sys.argv[2]) + struct.pack('<I', int(time.time()) // 60)
sys.stdout.write(hmac.new(secret, message, hashlib.sha256).hexdigest() + '\n')
PY
    ip netns exec "$NS_A" python3 -c "import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(open(sys.argv[1],'rb').read(), ('192.0.2.1', 4000))" "$PK_WORK/spa.payload"
    spa_ok=closed; can_reach "$NS_A" 192.0.2.1 21 && { spa_ok=open; got_spa=$((got_spa + 1)); }
    wait "$FLOOD_PID"
    sleep 0.5
    kernel=$(kernel_count)
    stop_and_count; processed=$PROCESSED; enobufs=$ENOBUFS
    echo "run $run: sequence → 22 $seq_ok, SPA → 21 $spa_ok; flood $(cat "$PK_WORK/flood.out"); kernel $kernel, pknockd $processed packets, enobufs $enobufs"
done
echo "legitimate sequence got in $got_seq/$N_LEGIT, SPA $got_spa/$N_LEGIT"
