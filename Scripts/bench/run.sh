#!/usr/bin/env bash
# PortKnockO benchmark: pknockd under floods, in network namespaces this script creates and removes
# (topology in Scripts/lib/netns.sh; documentation addresses only). Needs root. One command:
#
#   Scripts/bench/run.sh [quick]
#
# Builds pknockd in release mode and the flood sender (Scripts/bench/flood.c, with cc), then
# measures and prints, as described in BENCHMARKS.md:
#   1. throughput: spoofed first knocks sent vs counted by the kernel vs processed by pknockd
#      (its counters at SIGTERM), NFLOG ENOBUFS, and pknockd CPU time per packet, at 50k packets/s
#      and at the sender's maximum (BENCH_RATES, 0 = max), BENCH_REPEAT runs each (default 3):
#      every run, then the median and min–max spread, with the load average before and after;
#   2. memory: pknockd RSS with 0, 10k, 100k and 1M tracked peers (bytes per peer), and with the
#      default cap under a 2M-source flood (bounded by configuration);
#   3. latency: last knock → protected port accepting, p50/p90/p99: idle (also with pknockd and the
#      client on CPUs of their own, and for a 3-knock sequence) and under a flood, with pknockd's own
#      share of each set;
#   4. the legitimate client (a sequence and an SPA) during a flood of spoofed first knocks from
#      ≥ 1M distinct IPv6 sources (2001:db8:ff00::/40), several runs;
#   5. the same at human speed (issue #12): the sequence knocked with 1 s and with 5 s between
#      knocks, and an SPA, during a flood of ≥ 2M distinct sources at the sender's maximum rate,
#      10 runs each; pknockd's peak RSS and the bytes per first-knock entry.
# Every flood is bounded in count and time. `quick` shrinks counts for a smoke run.
# BENCH_PKNOCKD=PATH uses that pknockd instead of building one (e.g. an older commit's, to compare);
# BENCH_SECTIONS="1 5" runs only those sections; BENCH_HUMAN_GAPS and BENCH_HUMAN_RUNS narrow section 5.
# BENCH_NFLOG_BATCHING=false turns the flood-time NFLOG batching off (nflog_batching), to compare.
# BENCH_WARM=1 sends each section-1 flood twice, from other sources first, and measures the second:
# pknockd's steady state, its first-knock table already in memory.
# BENCH_FIRST_KNOCK_CAPACITY=N sets first_knock_capacity (default 5,242,880 entries, 80 MiB when
# full), to see what the table's size costs per packet (BENCHMARKS.md, "Where a flood packet's time goes").
# BENCH_BACKLOG=1 also prints, per section-1 run, the most bytes the NFLOG socket held (sampled every
# 2 ms; the sampler keeps a CPU busy, which lowers pknockd's CPU per packet: not for CPU figures).
# BENCH_ALLOCS=1 also prints, per section-1 run, pknockd's calls to glibc's allocator during the
# flood from 0.5 s after it began: uprobes on malloc, posix_memalign, realloc and calloc (perf;
# added if missing, removed afterwards; the probes and perf cost CPU: not for CPU figures).
# BENCH_RETAINS=1 does the same for the Swift runtime's reference counting and exclusivity checks
# (swift_retain, swift_release, swift_bridgeObjectRetain, swift_beginAccess), per packet at a
# fixed rate.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/opt/swift/usr/bin"
[ "$(id -u)" = 0 ] || { echo "bench: needs root (network namespaces)"; exit 1; }
QUICK=${1:-}
SCRATCH=${BENCH_SCRATCH_PATH:-.build}

echo "=== building pknockd (release) and the flood sender"
if [ -n "${BENCH_PKNOCKD:-}" ]; then
    PKNOCKD=$BENCH_PKNOCKD
    PKNOCK=${BENCH_PKNOCK:-$(dirname "$BENCH_PKNOCKD")/pknock}
else
    swift build --scratch-path "$SCRATCH" -c release --product pknockd >/dev/null || { echo "bench: build failed"; exit 1; }
    swift build --scratch-path "$SCRATCH" -c release --product pknock >/dev/null || { echo "bench: build failed"; exit 1; }
    PKNOCKD="$(swift build --scratch-path "$SCRATCH" -c release --show-bin-path)/pknockd"
    PKNOCK="$(swift build --scratch-path "$SCRATCH" -c release --show-bin-path)/pknock"
fi
SECTIONS=${BENCH_SECTIONS:-1 2 3 4 5}
section() { [[ " $SECTIONS " == *" $1 "* ]]; }
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
state_directory = "$PK_WORK/state"
control_socket = "$PK_WORK/control.sock"
nflog_batching = ${BENCH_NFLOG_BATCHING:-true}
${BENCH_FIRST_KNOCK_CAPACITY:+first_knock_capacity = $BENCH_FIRST_KNOCK_CAPACITY}

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
peak_rss_kib() { awk '/^VmHWM/ {print $2}' "/proc/$DAEMON_PID/status"; }
TICKS=$(getconf CLK_TCK)

# stop_and_count: stops pknockd (in this shell, so it can wait) and sets PROCESSED and ENOBUFS from
# the counters it logs when stopping.
stop_and_count() {
    stop_daemon
    local line
    line=$(grep "pknockd stopping" "$PK_WORK/pknockd.all.log" | tail -1)
    PROCESSED=$(echo "$line" | grep -o ' packets=[0-9]*' | cut -d= -f2)
    ENOBUFS=$(echo "$line" | grep -o 'nflog.enobufs=[0-9]*' | cut -d= -f2)
    DATAGRAMS=$(echo "$line" | grep -o 'nflog.datagrams=[0-9]*' | cut -d= -f2)
}

# flood COUNT PPS SECONDS [FIRST_INDEX] [tcp|udp] [PORT]: spoofed knocks from client B's namespace.
flood() {
    ip netns exec "$NS_B" "$FLOOD" eth0 "$SERVER_MAC" "$CLIENT_MAC" 2001:db8:2::1 "${6:-2002}" "$1" "$2" "$3" "${5:-tcp}" "${4:-0}"
}

sed_field() { echo "$1" | grep -o "$2=[0-9.]*" | cut -d= -f2; }

if [ "$QUICK" = quick ]; then N_FLOOD=200000; N_MEM=(10000 100000); N_LAT=50; N_LEGIT=1; SOURCES=300000
else N_FLOOD=2000000; N_MEM=(10000 100000 1000000); N_LAT=300; N_LEGIT=5; SOURCES=1500000; fi

echo
echo "=== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"

if section 1; then
# Uprobes counted during each flood (BENCH_ALLOCS, BENCH_RETAINS): LIBRARY:FUNCTION.
PROBES=()
[ "${BENCH_ALLOCS:-0}" = 1 ] && PROBES+=(libc:malloc libc:posix_memalign libc:realloc libc:calloc)
[ "${BENCH_RETAINS:-0}" = 1 ] && PROBES+=(libswiftCore:swift_retain libswiftCore:swift_release libswiftCore:swift_bridgeObjectRetain libswiftCore:swift_beginAccess)
PROBE_EVENTS=""
ADDED_PROBES=()
for probe in "${PROBES[@]}"; do
    command -v perf >/dev/null || { echo "bench: BENCH_ALLOCS and BENCH_RETAINS need perf (Debian: apt-get install linux-perf)"; exit 1; }
    library=${probe%%:*} function=${probe#*:}
    PROBE_EVENTS+="${PROBE_EVENTS:+,}probe_$library:$function"
    perf probe -l "probe_$library:$function" 2>/dev/null | grep -q . && continue
    perf probe -q -x "$(ldd "$PKNOCKD" | awk -v name="$library.so" 'index($1, name) == 1 { print $3 }')" --add "$function" || exit 1
    ADDED_PROBES+=("probe_$library:$function")
done
RATES=${BENCH_RATES:-50000 0}
REPEAT=${BENCH_REPEAT:-3}
echo
echo "=== 1. throughput: spoofed first knocks (TCP SYN to 2002, IPv6, distinct sources), $REPEAT runs per rate"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %4s %10s %10s %10s %10s %8s %10s %12s %10s\n' rate run sent kernel pknockd lost enobufs sent_pps cpu_us/pkt pkt/dgram
write_config 65536 10
# median_spread VALUES...: "median (min–max)" of numbers.
median_spread() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%g (%g–%g)", m, v[1], v[NR] }'
}
for rate in $RATES; do
    cpus=(); losts=(); ppss=()
    for run in $(seq 1 "$REPEAT"); do
        start_daemon --config "$PK_WORK/bench.toml" || exit 1
        # Past start-up's one-off work (pknockd releases its start-up pages 2 s after start, a
        # scan of /proc/self/smaps): the window measures the flood alone.
        sleep 2.5
        seconds=$((N_FLOOD / 100000 + 2)); [ "$rate" != 0 ] && seconds=3
        count=$N_FLOOD; [ "$rate" != 0 ] && count=$((rate * 3))
        warm_packets=0
        if [ "${BENCH_WARM:-0}" = 1 ]; then
            # The same flood from other sources first, unmeasured: the first-knock table's memory is
            # in place (and part of it live) when the measured flood begins. Its packets, as the
            # kernel counted them, come off pknockd's count below.
            reset_kernel_count
            flood "$count" "$rate" "$seconds" $((run * 100000000 + 50000000)) >/dev/null
            sleep 0.5
            warm_packets=$(kernel_count)
        fi
        reset_kernel_count
        before=$(cpu_ticks)
        if [ "${BENCH_BACKLOG:-0}" = 1 ]; then
            # The largest Rmem of a netfilter netlink socket (protocol 12) in the server namespace.
            ( exec ip netns exec "$NS_S" python3 -c '
import sys, time
peak, end = 0, time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    with open("/proc/net/netlink") as table:
        for line in table.readlines()[1:]:
            field = line.split()
            if field[1] == "12": peak = max(peak, int(field[4]))
    time.sleep(0.002)
print(peak)' "$((seconds + 1))" > "$PK_WORK/backlog" ) &
            BACKLOG_PID=$!
        fi
        if [ -n "$PROBE_EVENTS" ]; then
            ( sleep 0.5; exec perf stat -x, -e "$PROBE_EVENTS" -p "$DAEMON_PID" -o "$PK_WORK/probes" -- sleep $((seconds - 1)) ) &
            PROBES_PID=$!
        fi
        # Fresh sources every run: each knock is a first knock, never a retransmission.
        out=$(flood "$count" "$rate" "$seconds" $((run * 100000000)))
        sleep 1
        after=$(cpu_ticks)
        kernel=$(kernel_count)
        stop_and_count; processed=$((PROCESSED - warm_packets)); enobufs=$ENOBUFS
        per_datagram=$(awk -v p="$PROCESSED" -v d="${DATAGRAMS:-0}" 'BEGIN { printf "%.1f", d ? p / d : 0 }')
        sent=$(sed_field "$out" sent)
        cpu_us=$(awk -v t=$((after - before)) -v hz="$TICKS" -v n="$processed" 'BEGIN { printf "%.2f", n ? t / hz * 1e6 / n : 0 }')
        cpus+=("$cpu_us"); losts+=($((kernel - processed))); ppss+=("$(sed_field "$out" pps)")
        printf '%-10s %4s %10s %10s %10s %10s %8s %10s %12s %10s\n' "${rate/#0/max}" "$run" "$sent" "$kernel" "$processed" \
            $((kernel - processed)) "$enobufs" "$(sed_field "$out" pps)" "$cpu_us" "$per_datagram"
        if [ "${BENCH_BACKLOG:-0}" = 1 ]; then
            wait "$BACKLOG_PID"
            echo "           NFLOG socket's peak queue: $(cat "$PK_WORK/backlog") bytes"
        fi
        if [ -n "$PROBE_EVENTS" ]; then
            wait "$PROBES_PID"
            # Calls, and per packet where the rate is known (the window holds rate × its seconds).
            echo "           calls mid-flood ($((seconds - 1)) s from 0.5 s in):" \
                "$(awk -F, -v n=$((rate * (seconds - 1))) '/probe_/ { sub("probe_[^:]*:", "", $3)
                    printf "%s %s%s  ", $3, $1, n ? sprintf(" (%.2f/packet)", $1 / n) : "" }' "$PK_WORK/probes")"
        fi
    done
    echo "rate ${rate/#0/max}: cpu µs/packet $(median_spread "${cpus[@]}"), lost $(median_spread "${losts[@]}")," \
        "sent pps $(median_spread "${ppss[@]}")  [median (min–max) of $REPEAT runs]"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for probe in "${ADDED_PROBES[@]}"; do perf probe -q -d "$probe"; done
fi

if section 2; then
echo
echo "=== 2. memory: pknockd RSS by first knocks remembered (no time limit; first-knock table 5,242,880 entries)"
write_config 65536 ""
start_daemon --config "$PK_WORK/bench.toml" || exit 1
sleep 0.3
rss0=$(rss_kib)
printf '%-10s %10s %14s\n' sources rss_kib bytes/source
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
echo "(pknockd processed $processed knocks, enobufs=$enobufs; the table grows with the first knocks it holds, to 8/3"
echo " slots of 16 bytes each, up to 5,242,880 slots = 80 MiB, and keeps its size; the 0 line is read before pknockd"
echo " releases its start-up pages at 2 s)"
write_config 65536 10
start_daemon --config "$PK_WORK/bench.toml" || exit 1
flood "$SOURCES" 0 30 >/dev/null
sleep 1
echo "after a $SOURCES-source flood (time 10 s): RSS $(rss_kib) KiB (bounded by first_knock_capacity, not the flood)"
stop_and_count
fi

if section 3; then
echo
echo "=== 3. latency: last knock → protected port accepts (LAT: 6001,6002 → 8080; SEQ: 2002,2001,2004 → 22), µs"
# The table is pknockd's (owner flag): grants are taken back through its control socket, not nft.
RESET=(ip netns exec "$NS_S" "$PKNOCK" close LAT 192.0.2.2 --control-socket "$PK_WORK/control.sock")
write_config 65536 10
# own_share LABEL: stops pknockd and prints its own share of the grants it made (its stop log).
own_share() {
    stop_and_count
    local stopping
    stopping=$(grep "pknockd stopping" "$PK_WORK/pknockd.all.log" | tail -1)
    echo "  pknockd's own share ($1; NFLOG message read → the kernel had applied the grant):" \
        "p50 $(sed_field "$stopping" grant.latency.p50.us) µs, p99 $(sed_field "$stopping" grant.latency.p99.us) µs" \
        "over $(sed_field "$stopping" grant.count) grants"
}
start_daemon --config "$PK_WORK/bench.toml" || exit 1
echo "idle:          $(a python3 "$LATENCY" 192.0.2.1 "$N_LAT" 8080 6001 6002 -- "${RESET[@]}" | tail -1)"
own_share idle
# The probing client busy-waits: on a small machine it competes with pknockd for a CPU. The same
# idle runs with each on a CPU of its own (CPU 0: pknockd's threads, CPU 1: the client).
if [ "$(nproc)" -ge 2 ]; then
    start_daemon --config "$PK_WORK/bench.toml" || exit 1
    taskset -a -p -c 0 "$DAEMON_PID" >/dev/null
    echo "idle, pknockd and the client on CPUs of their own:" \
        "$(a taskset -c 1 python3 "$LATENCY" 192.0.2.1 "$N_LAT" 8080 6001 6002 -- "${RESET[@]}" | tail -1)"
    own_share "idle, CPUs of their own"
fi
# A three-knock sequence sent back to back, as knockd's `knock` client sends one (SEQ: 2002, 2001,
# 2004 → 22).
start_daemon --config "$PK_WORK/bench.toml" || exit 1
echo "idle, 3 knocks: $(a python3 "$LATENCY" 192.0.2.1 "$N_LAT" 22 2002 2001 2004 -- \
    ip netns exec "$NS_S" "$PKNOCK" close SEQ 192.0.2.2 --control-socket "$PK_WORK/control.sock" | tail -1)"
own_share "idle, 3 knocks"
start_daemon --config "$PK_WORK/bench.toml" || exit 1
( exec ip netns exec "$NS_B" "$FLOOD" eth0 "$SERVER_MAC" "$CLIENT_MAC" 2001:db8:2::1 2002 100000000 50000 $((N_LAT / 20 + 10)) tcp 5000000 >/dev/null ) &
FLOOD_PID=$!
sleep 0.5
echo "50k pps flood: $(a python3 "$LATENCY" 192.0.2.1 "$N_LAT" 8080 6001 6002 -- "${RESET[@]}" | tail -1)"
kill "$FLOOD_PID" 2>/dev/null; wait "$FLOOD_PID" 2>/dev/null
own_share "50k pps flood"
fi

if section 4; then
echo
echo "=== 4. legitimate client during a flood of spoofed first knocks ($SOURCES distinct IPv6 sources, sender's max rate)"
write_config 65536 10  # its own, so the section also runs alone (BENCH_SECTIONS=4)
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
fi

if section 5; then
N_HUMAN=${BENCH_HUMAN_RUNS:-10}; HUMAN_SOURCES=2200000
[ "$QUICK" = quick ] && { N_HUMAN=2; HUMAN_SOURCES=2000000; }
echo
echo "=== 5. a client at human speed during a max-rate flood of first knocks ($HUMAN_SOURCES distinct IPv6 sources a run, $N_HUMAN runs per gap)"
write_config 65536 10
for gap in ${BENCH_HUMAN_GAPS:-1 5}; do
    got_seq=0; got_spa=0; peak=0
    for run in $(seq 1 "$N_HUMAN"); do
        start_daemon --config "$PK_WORK/bench.toml" || exit 1
        rss_idle=$(rss_kib)
        # Every run floods fresh sources, as fast as the sender goes, until all are sent (at most 40 s);
        # the client starts 2 s in and is done within 2 gaps (checked: "flood still running").
        flood "$HUMAN_SOURCES" 0 40 $(((gap * 100 + run) * 10000000)) > "$PK_WORK/flood.out" &
        FLOOD_PID=$!
        sleep 2
        ip netns exec "$NS_A" python3 - 192.0.2.1 "$gap" 2002 2001 2004 <<'PY'
import socket, sys, time
host, gap = sys.argv[1], float(sys.argv[2])
for index, port in enumerate(sys.argv[3:]):
    if index: time.sleep(gap)
    s = socket.socket(); s.setblocking(False)
    try: s.connect((host, int(port)))
    except BlockingIOError: pass
    s.close()
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
        flooding=no; kill -0 "$FLOOD_PID" 2>/dev/null && flooding=yes
        wait "$FLOOD_PID"
        sleep 0.5
        rss_peak=$(peak_rss_kib); [ "$rss_peak" -gt "$peak" ] && peak=$rss_peak
        stop_and_count; processed=$PROCESSED; enobufs=$ENOBUFS
        echo "gap ${gap}s run $run: sequence → 22 $seq_ok, SPA → 21 $spa_ok, flood still running at the end: $flooding;" \
            "flood $(cat "$PK_WORK/flood.out"); pknockd $processed packets, enobufs $enobufs, RSS idle $rss_idle KiB, peak $rss_peak KiB"
    done
    echo "gap ${gap}s: sequence got in $got_seq/$N_HUMAN, SPA $got_spa/$N_HUMAN, peak RSS $peak KiB"
done
echo "first-knock entry: 16 bytes, no other per-entry overhead (Sources/KnockCore/FirstKnockTable.swift);" \
    "table 5,242,880 entries = 81,920 KiB at most"
fi
