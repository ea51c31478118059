#!/usr/bin/env bash
# Where one grant's time goes inside pknockd, from a syscall trace: idle grants of a two-knock rule
# (6001, 6002 → 8080), pknockd's threads on CPU 0 and the probing client (latency.py) on CPU 1, in
# network namespaces this script creates and removes (Scripts/lib/netns.sh; documentation addresses
# only). Needs root and perf (Debian: linux-perf). One command:
#
#   Scripts/bench/grant-trace.sh [PKNOCKD] [GRANTS]
#
# Builds pknockd in release mode unless PKNOCKD is given; GRANTS defaults to 40. perf records
# pknockd's syscall entries and exits, context switches and user page faults; per grant (a `sendto`
# in a wake that read an NFLOG datagram) it prints p50 / p90 / p99 / max of: the read → the grant's
# `sendto` (pknockd's own code), the `sendto` (the kernel applies the batch and commits), and the
# `sendto`'s return → the last of the recvs that follow it (the acknowledgements); the first grant's
# time and page faults apart (its code pages are faulted in); and, for the slowest grants whose
# acknowledgement was read over 500 µs after the `sendto`, the tasks pknockd was switched away to
# meanwhile. Tracepoints add a few µs each: compare builds with it, not with the daemon's own
# histogram (BENCHMARKS.md, "Grant path" and "First-knock table by load, intake by Span").
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/opt/swift/usr/bin"
[ "$(id -u)" = 0 ] || { echo "grant-trace: needs root (network namespaces, perf)"; exit 1; }
command -v perf >/dev/null || { echo "grant-trace: needs perf (Debian: apt-get install linux-perf)"; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "grant-trace: needs 2 CPUs (pknockd and the client apart)"; exit 1; }
if [ -n "${1:-}" ]; then
    PKNOCKD=$(realpath "$1")
else
    swift build -c release --product pknockd >/dev/null 2>&1 || { echo "grant-trace: build failed"; exit 1; }
    PKNOCKD="$(swift build -c release --show-bin-path)/pknockd"
fi
PKNOCK=${PKNOCK:-$(dirname "$PKNOCKD")/pknock}
[ -x "$PKNOCK" ] || { swift build -c release --product pknock >/dev/null 2>&1 && PKNOCK="$(swift build -c release --show-bin-path)/pknock"; }
GRANTS=${2:-40}
source Scripts/lib/netns.sh
netns_up
start_service 8080
cat > "$PK_WORK/trace.toml" <<CONF
[daemon]
table = "pktrace"
nflog_group = 30
state_directory = "$PK_WORK/state"
control_socket = "$PK_WORK/control.sock"

[[rule]]
name = "LAT"
knock = [6001, 6002]
time = 10
autoclose = 60
protect = [8080]
CONF
start_daemon --config "$PK_WORK/trace.toml" || exit 1
taskset -a -p -c 0 "$DAEMON_PID" >/dev/null
sleep 3  # past start-up's release of its pages
perf record -q -o "$PK_WORK/perf.data" -e raw_syscalls:sys_enter -e raw_syscalls:sys_exit -e sched:sched_switch \
    -e exceptions:page_fault_user -p "$DAEMON_PID" 2>/dev/null &
PERF_PID=$!
sleep 1
echo "=== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "end to end (latency.py): $(a taskset -c 1 python3 "$PK_SCRIPTS/bench/latency.py" 192.0.2.1 "$GRANTS" 8080 6001 6002 -- \
    ip netns exec "$NS_S" "$PKNOCK" close LAT 192.0.2.2 --control-socket "$PK_WORK/control.sock" | tail -1)"
kill -INT "$PERF_PID"; wait "$PERF_PID"
stop_daemon
stopping=$(grep "pknockd stopping" "$PK_WORK/pknockd.all.log" | tail -1)
field() { echo "$stopping" | grep -o "$1=[0-9]*" | cut -d= -f2; }
echo "pknockd's own histogram (traced): p50 $(field grant.latency.p50.us) µs, p99 $(field grant.latency.p99.us) µs"
perf script -i "$PK_WORK/perf.data" -F tid,time,event,trace 2>/dev/null | python3 -c '
import re, statistics, sys
events = []
for line in sys.stdin:
    m = re.match(r"\s*(\d+)\s+(\d+\.\d+):\s+(\S+):\s+(.*)", line)
    if m:
        events.append((int(m[1]), float(m[2]) * 1e6, m[3], m[4]))
def is_exit(e, nr): return e[2] == "raw_syscalls:sys_exit" and e[3].startswith("NR %d " % nr)
grants = []
slow = []
for i, e in enumerate(events):
    if not (e[2] == "raw_syscalls:sys_enter" and e[3].startswith("NR 44 ")):
        continue
    read = None; faults = 0
    for j in range(i - 1, -1, -1):  # back to the wake: the NFLOG read (recvmmsg) after the last poll
        p = events[j]
        if p[0] != e[0]: continue
        if p[2] == "exceptions:page_fault_user": faults += 1
        if read is None and is_exit(p, 299): read = p[1]
        if is_exit(p, 7): break
    if read is None: continue  # a revoke from the control socket
    sent = answered = None
    for p in events[i + 1:]:  # the acknowledgements: the recvs right after the sendto
        if p[0] != e[0]: continue
        if sent is None and is_exit(p, 44): sent = p[1]
        elif sent is not None and is_exit(p, 45): answered = p[1]
        elif answered is not None and p[2] == "raw_syscalls:sys_enter" and not p[3].startswith("NR 45 "): break
    if sent is not None and answered is not None:
        grants.append((e[1] - read, sent - e[1], answered - sent, answered - read, faults))
        if answered - sent > 500:  # who had the CPU meanwhile: the switches away from pknockd
            away = [p[3] for p in events if p[0] == e[0] and sent <= p[1] <= answered and p[2] == "sched:sched_switch"]
            slow.append((answered - sent, [re.sub(r".*next_comm=(\S+).*", r"\1", a) for a in away]))
if len(grants) < 2: sys.exit("grant-trace: too few grants in the trace")
first, rest = grants[0], grants[1:]
print("first grant: %.0f µs from the read to the acknowledgement, %d page faults" % (first[3], first[4]))
for name, k in (("read → sendto (pknockd)", 0), ("sendto (kernel)", 1), ("sendto → acknowledgement", 2), ("read → acknowledgement", 3)):
    values = sorted(g[k] for g in rest)
    print("%-28s p50 %5.0f  p90 %5.0f  p99 %5.0f  max %5.0f µs  (%d grants after the first)" % (
        name, statistics.median(values), values[int(len(values) * 0.9)], values[int(len(values) * 0.99)], values[-1], len(rest)))
for took, away in sorted(slow, reverse=True)[:5]:
    print("slow: %.0f µs from sendto to its acknowledgement; pknockd switched away to %s" % (took, ", ".join(away) or "nothing traced"))
'
