# Shared by Scripts/netns-e2e.sh and Scripts/demo.sh: a server namespace running pknockd and a TCP
# echo service, and two client namespaces, each on its own veth link (documentation addresses only).
#
#   client A (ns $NS_A)                    server (ns $NS_S)                  client B (ns $NS_B)
#   192.0.2.2/24     2001:db8:1::2/64 ──── 192.0.2.1   2001:db8:1::1
#                                          198.51.100.1 2001:db8:2::1 ──── 198.51.100.2/24 2001:db8:2::2
#
# Source this file, call netns_up, and netns_down runs on exit (trap). Names carry $$ so parallel
# runs never collide.

PK_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NS_S="pk-test-$$-s"
NS_A="pk-test-$$-a"
NS_B="pk-test-$$-b"
PK_WORK=$(mktemp -d /tmp/pknock-netns.XXXXXX)
SERVICE_PID=""
UDP_SERVICE_PID=""
DAEMON_PID=""

s() { ip netns exec "$NS_S" "$@"; }   # run in the server namespace
a() { ip netns exec "$NS_A" "$@"; }   # run in client A's namespace
b() { ip netns exec "$NS_B" "$@"; }   # run in client B's namespace

netns_up() {
    trap netns_down EXIT
    ip netns add "$NS_S"
    ip netns add "$NS_A"
    ip netns add "$NS_B"
    ip link add pkA$$ netns "$NS_S" type veth peer name eth0 netns "$NS_A"
    ip link add pkB$$ netns "$NS_S" type veth peer name eth0 netns "$NS_B"
    s ip addr add 192.0.2.1/24 dev pkA$$
    s ip addr add 2001:db8:1::1/64 dev pkA$$ nodad
    s ip addr add 198.51.100.1/24 dev pkB$$
    s ip addr add 2001:db8:2::1/64 dev pkB$$ nodad
    a ip addr add 192.0.2.2/24 dev eth0
    a ip addr add 2001:db8:1::2/64 dev eth0 nodad
    b ip addr add 198.51.100.2/24 dev eth0
    b ip addr add 2001:db8:2::2/64 dev eth0 nodad
    for ns in "$NS_S" "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up; done
    s ip link set pkA$$ up
    s ip link set pkB$$ up
    a ip link set eth0 up
    b ip link set eth0 up
    a ip -6 route add default via 2001:db8:1::1 dev eth0
    b ip -6 route add default via 2001:db8:2::1 dev eth0
}

netns_down() {
    stop_daemon
    if [ -n "$SERVICE_PID" ]; then kill "$SERVICE_PID" 2>/dev/null; wait "$SERVICE_PID" 2>/dev/null || true; fi
    SERVICE_PID=""
    stop_udp_service
    for ns in "$NS_S" "$NS_A" "$NS_B"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$PK_WORK"
}

# start_service PORT...: the TCP echo service the firewall protects.
start_service() {
    # Not through s(): $! must be the process itself (ip netns exec execs it) so kill reaches it.
    ip netns exec "$NS_S" python3 "$PK_SCRIPTS/lib/tcp.py" serve "$@" &
    SERVICE_PID=$!
    sleep 0.3
}

# start_udp_service PORT...: a UDP echo service in the server namespace (for UDP protected ports).
start_udp_service() {
    ip netns exec "$NS_S" python3 "$PK_SCRIPTS/lib/tcp.py" udpserve "$@" &
    UDP_SERVICE_PID=$!
    sleep 0.3
}

stop_udp_service() {
    if [ -n "$UDP_SERVICE_PID" ]; then kill "$UDP_SERVICE_PID" 2>/dev/null; wait "$UDP_SERVICE_PID" 2>/dev/null || true; fi
    UDP_SERVICE_PID=""
}

# start_daemon ARGS...: pknockd in the server namespace; waits until its table is installed.
start_daemon() {
    ip netns exec "$NS_S" "$PKNOCKD" "$@" >>"$PK_WORK/pknockd.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 1 100); do
        if grep -q "pknockd started" "$PK_WORK/pknockd.log" 2>/dev/null; then return 0; fi
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            echo "pknockd exited early:"; cat "$PK_WORK/pknockd.log"; DAEMON_PID=""; return 1
        fi
        sleep 0.05
    done
    echo "pknockd did not start"; return 1
}

# stop_daemon [SIGNAL]: stops the pknockd this script started (SIGTERM by default).
stop_daemon() {
    [ -n "$DAEMON_PID" ] || return 0
    kill "-${1:-TERM}" "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
    # pknockd.last.log: what the daemon just stopped wrote; pknockd.all.log: every daemon's output.
    cp "$PK_WORK/pknockd.log" "$PK_WORK/pknockd.last.log" 2>/dev/null || true
    cat "$PK_WORK/pknockd.log" >> "$PK_WORK/pknockd.all.log" 2>/dev/null || true
    : > "$PK_WORK/pknockd.log"
}

# can_reach NS HOST PORT: whether a TCP connection from NS to HOST:PORT completes (0.7 s timeout).
can_reach() {
    ip netns exec "$1" python3 "$PK_SCRIPTS/lib/tcp.py" probe "$2" "$3" 0.7
}

# answer NS tcp|udp HOST PORT [SECONDS]: how HOST:PORT answers a probe from NS: refused (TCP reset or
# ICMP port unreachable), silent, or open (0.7 s timeout by default).
answer() {
    ip netns exec "$1" python3 "$PK_SCRIPTS/lib/tcp.py" answer "$2" "$3" "$4" "${5:-0.7}"
}
