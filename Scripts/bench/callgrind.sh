#!/usr/bin/env bash
# Instructions pknockd spends per spoofed first knock, counted by callgrind: unlike CPU time, the
# figure does not depend on what else the machine is doing, so two builds compare exactly. Needs
# root (network namespaces, as Scripts/bench/run.sh) and valgrind.
#
#   Scripts/bench/callgrind.sh PKNOCKD [COUNT]
#
# Runs PKNOCKD (a release build; valgrind may need `strip --strip-debug` of it) under callgrind
# twice with the bench's rules, fed COUNT (default 20,000) and then 2 × COUNT spoofed first knocks
# from distinct IPv6 sources at 2,000 a second, and prints the difference in instructions divided by
# COUNT: the steady cost of a knock, without start-up and one-time costs (such as the first-knock
# table's memory being zeroed as the first knocks of a flood land in it). CG_KEEP=PREFIX keeps the
# two profiles as PREFIX.COUNT for `callgrind_annotate --inclusive=yes` (costs per function).
set -uo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "callgrind: needs root (network namespaces)"; exit 1; }
PKNOCKD=$(realpath "$1")
COUNT=${2:-20000}
source Scripts/lib/netns.sh
FLOOD="$PK_WORK/pk-flood"
cc -O2 -o "$FLOOD" Scripts/bench/flood.c || exit 1
netns_up
SERVER_MAC=$(s cat /sys/class/net/pkB$$/address)
CLIENT_MAC=$(b cat /sys/class/net/eth0/address)
cat > "$PK_WORK/cg.toml" <<CONF
[daemon]
table = "pkcg"
nflog_group = 28
state_directory = "$PK_WORK/state"
control_socket = "$PK_WORK/control.sock"

[[rule]]
name = "SEQ"
knock = [2002, 2001, 2004]
time = 10
autoclose = 60
protect = [22]

[[rule]]
name = "LAT"
knock = [6001, 6002]
time = 10
autoclose = 60
protect = [8080]
CONF

# instructions COUNT: callgrind's total instruction count for a run fed COUNT knocks.
instructions() {
    : > "$PK_WORK/cg.log"
    ip netns exec "$NS_S" valgrind --tool=callgrind --callgrind-out-file="$PK_WORK/cg.out" \
        "$PKNOCKD" --config "$PK_WORK/cg.toml" >>"$PK_WORK/cg.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 1 600); do grep -q "pknockd started" "$PK_WORK/cg.log" && break; sleep 0.1; done
    if [ "$1" != 0 ]; then
        ip netns exec "$NS_B" "$FLOOD" eth0 "$SERVER_MAC" "$CLIENT_MAC" 2001:db8:2::1 2002 "$1" 2000 $(($1 / 2000 + 10)) tcp >/dev/null
    fi
    sleep 2
    kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"; DAEMON_PID=""
    grep -o ' packets=[0-9]*' "$PK_WORK/cg.log" | tail -1 >&2
    awk '/^summary:/ {print $2}' "$PK_WORK/cg.out"
    if [ -n "${CG_KEEP:-}" ]; then cp "$PK_WORK/cg.out" "$CG_KEEP.$1"; fi
}
once=$(instructions "$COUNT")
twice=$(instructions $((2 * COUNT)))
echo "$PKNOCKD: $COUNT knocks $once, $((2 * COUNT)) knocks $twice instructions: $(( (twice - once) / COUNT )) per knock"
