# Shared by Scripts/e2e/95-fleet.sh and Scripts/bench/fleet.sh: a fleet of three pknockd gateways
# sharing grants through a 3-member etcd cluster (issue #16, Docs/fleet.md), in network namespaces
# this file creates and removes (documentation addresses only).
#
#   etcd e1 198.51.100.11 ─┐                              ┌─ 203.0.113.21 2001:db8:3::21  gateway A
#   etcd e2 198.51.100.12 ─┤ bridge "etcd" (198.51.100/24) │  bridge "front" (203.0.113/24)
#   etcd e3 198.51.100.13 ─┤   in namespace $FLEET_BR     ├─ 203.0.113.22 2001:db8:3::22  gateway B
#   gw A    198.51.100.21 ─┤                              ├─ 203.0.113.23 2001:db8:3::23  gateway C
#   gw B    198.51.100.22 ─┤                              └─ 203.0.113.2  2001:db8:3::2   client
#   gw C    198.51.100.23 ─┘
#
# Each gateway namespace has a leg on both bridges; the client reaches all three gateways on the
# front segment, the etcd members only see the gateways. Namespaces: $FLEET_NS_E[1..3],
# $FLEET_NS[A|B|C], $FLEET_NS_CLIENT, $FLEET_BR (names carry $$). Data dirs, configs and logs live in
# $FLEET_WORK (mktemp). Every process is started here, remembered by PID and stopped by PID.
#
#   fleet_up                     namespaces + links (trap fleet_down on EXIT unless FLEET_NO_TRAP=1)
#   etcd_start N / etcd_stop N [SIGNAL] / etcd_up (all three + healthy) / etcd_healthy [N...]
#   etcdctl_at N ARGS...         etcdctl against member N (from the bridge namespace)
#   gateway_config G TOML_EXTRA  writes $FLEET_WORK/G/pknock.toml ([daemon] + [fleet] + TOML_EXTRA)
#   gateway_start G ARGS... / gateway_stop G [SIGNAL]   pknockd in gateway G's namespace ($FLEET_PKNOCKD)
#   gateway_partition G / gateway_heal G               drop / allow G's traffic to and from etcd
#   fleet_down                   stops everything started here, removes namespaces and $FLEET_WORK

FLEET_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FLEET_BR="pkf-$$-br"
FLEET_NS_E1="pkf-$$-e1"
FLEET_NS_E2="pkf-$$-e2"
FLEET_NS_E3="pkf-$$-e3"
FLEET_NS_A="pkf-$$-a"
FLEET_NS_B="pkf-$$-b"
FLEET_NS_C="pkf-$$-c"
FLEET_NS_CLIENT="pkf-$$-client"
FLEET_ETCD_IP=([1]=198.51.100.11 [2]=198.51.100.12 [3]=198.51.100.13)
declare -A FLEET_BACK_IP=([A]=198.51.100.21 [B]=198.51.100.22 [C]=198.51.100.23)
declare -A FLEET_IP=([A]=203.0.113.21 [B]=203.0.113.22 [C]=203.0.113.23)
declare -A FLEET_IP6=([A]=2001:db8:3::21 [B]=2001:db8:3::22 [C]=2001:db8:3::23)
declare -A FLEET_NODE=([A]=gw-a [B]=gw-b [C]=gw-c)
FLEET_CLIENT_IP=203.0.113.2
FLEET_CLIENT_IP6=2001:db8:3::2
FLEET_ENDPOINTS="http://198.51.100.11:2379,http://198.51.100.12:2379,http://198.51.100.13:2379"
FLEET_ETCD=${FLEET_ETCD:-$(command -v etcd || true)}
FLEET_ETCDCTL=${FLEET_ETCDCTL:-$(command -v etcdctl || true)}
FLEET_WORK=""
FLEET_ETCD_PID=()
declare -A FLEET_GW_PID=()
declare -A FLEET_SERVICE_PID=()
FLEET_IS_UP=""

fleet_ns() {   # fleet_ns A|B|C|client|e1..e3|br: the namespace's name
    case $1 in
        A) echo "$FLEET_NS_A" ;; B) echo "$FLEET_NS_B" ;; C) echo "$FLEET_NS_C" ;;
        client) echo "$FLEET_NS_CLIENT" ;; br) echo "$FLEET_BR" ;;
        e1) echo "$FLEET_NS_E1" ;; e2) echo "$FLEET_NS_E2" ;; e3) echo "$FLEET_NS_E3" ;;
        *) echo "fleet_ns: unknown $1" >&2; return 1 ;;
    esac
}
fx() { local ns; ns=$(fleet_ns "$1") || return 1; shift; ip netns exec "$ns" "$@"; }   # fx WHERE CMD...

# fleet_link NS IFNAME BRIDGE ADDR... : a veth from NS (named IFNAME there) onto BRIDGE in $FLEET_BR.
fleet_link() {
    local ns=$1 ifname=$2 bridge=$3 peer="f$((++FLEET_LINKS))x$$"
    shift 3
    ip link add "$peer" netns "$FLEET_BR" type veth peer name "$ifname" netns "$ns"
    ip -n "$FLEET_BR" link set "$peer" master "$bridge" up
    for addr in "$@"; do
        if [[ $addr == *:* ]]; then ip -n "$ns" addr add "$addr" dev "$ifname" nodad
        else ip -n "$ns" addr add "$addr" dev "$ifname"; fi
    done
    ip -n "$ns" link set "$ifname" up
}
FLEET_LINKS=0

fleet_up() {
    [ "${FLEET_NO_TRAP:-}" = 1 ] || trap fleet_down EXIT
    FLEET_WORK=$(mktemp -d /tmp/pknock-fleet.XXXXXX)
    local ns
    for ns in "$FLEET_BR" "$FLEET_NS_E1" "$FLEET_NS_E2" "$FLEET_NS_E3" "$FLEET_NS_A" "$FLEET_NS_B" \
              "$FLEET_NS_C" "$FLEET_NS_CLIENT"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    FLEET_IS_UP=1
    ip -n "$FLEET_BR" link add etcd type bridge
    ip -n "$FLEET_BR" link add front type bridge
    # No IPv6 autoconfiguration or DAD noise on the bridges; they only switch.
    ip netns exec "$FLEET_BR" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "$FLEET_BR" link set etcd up
    ip -n "$FLEET_BR" link set front up
    fleet_link "$FLEET_NS_E1" eth0 etcd "${FLEET_ETCD_IP[1]}/24"
    fleet_link "$FLEET_NS_E2" eth0 etcd "${FLEET_ETCD_IP[2]}/24"
    fleet_link "$FLEET_NS_E3" eth0 etcd "${FLEET_ETCD_IP[3]}/24"
    local g
    for g in A B C; do
        fleet_link "$(fleet_ns $g)" back etcd "${FLEET_BACK_IP[$g]}/24"
        fleet_link "$(fleet_ns $g)" front front "${FLEET_IP[$g]}/24" "${FLEET_IP6[$g]}/64"
        mkdir -p "$FLEET_WORK/$g"
    done
    fleet_link "$FLEET_NS_CLIENT" eth0 front "$FLEET_CLIENT_IP/24" "$FLEET_CLIENT_IP6/64"
    # etcdctl and curl run from the bridge namespace: give it a leg on the etcd segment.
    ip -n "$FLEET_BR" addr add 198.51.100.99/24 dev etcd
}

fleet_down() {
    [ -n "$FLEET_IS_UP" ] || return 0
    local g n
    for g in "${!FLEET_GW_PID[@]}"; do gateway_stop "$g"; done
    for g in "${!FLEET_SERVICE_PID[@]}"; do
        kill "${FLEET_SERVICE_PID[$g]}" 2>/dev/null; wait "${FLEET_SERVICE_PID[$g]}" 2>/dev/null || true
    done
    FLEET_SERVICE_PID=()
    for n in 1 2 3; do etcd_stop "$n"; done
    for ns in "$FLEET_BR" "$FLEET_NS_E1" "$FLEET_NS_E2" "$FLEET_NS_E3" "$FLEET_NS_A" "$FLEET_NS_B" \
              "$FLEET_NS_C" "$FLEET_NS_CLIENT"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    FLEET_IS_UP=""
    [ -n "${FLEET_KEEP_WORK:-}" ] || rm -rf "$FLEET_WORK"
}

# --- etcd ---------------------------------------------------------------------------------------

fleet_initial_cluster() {
    echo "e1=http://${FLEET_ETCD_IP[1]}:2380,e2=http://${FLEET_ETCD_IP[2]}:2380,e3=http://${FLEET_ETCD_IP[3]}:2380"
}

# etcd_start N: starts member N (1..3) in its namespace; its data dir survives etcd_stop, so a
# restarted member rejoins with its own state ("new" cluster state only matters on first start).
etcd_start() {
    local n=$1 ip=${FLEET_ETCD_IP[$1]}
    mkdir -p "$FLEET_WORK/etcd$n"
    chmod 0700 "$FLEET_WORK/etcd$n"
    # Not through fx(): $! must be etcd itself (ip netns exec execs it) so stopping by PID reaches it.
    ip netns exec "$(fleet_ns "e$n")" "$FLEET_ETCD" --name "e$n" --data-dir "$FLEET_WORK/etcd$n/data" \
        --listen-client-urls "http://$ip:2379" --advertise-client-urls "http://$ip:2379" \
        --listen-peer-urls "http://$ip:2380" --initial-advertise-peer-urls "http://$ip:2380" \
        --initial-cluster "$(fleet_initial_cluster)" --initial-cluster-state new \
        --initial-cluster-token "pkf-$$" --heartbeat-interval 100 --election-timeout 1000 \
        --experimental-watch-progress-notify-interval 1s --logger zap --log-level warn \
        >>"$FLEET_WORK/etcd$n/log" 2>&1 &
    FLEET_ETCD_PID[$n]=$!
}

# etcd_stop N [SIGNAL]: stops member N (SIGTERM by default; KILL for a crash).
etcd_stop() {
    local pid=${FLEET_ETCD_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill "-${2:-TERM}" "$pid" 2>/dev/null || true
    # A member that lost its peers can spend seconds on a leadership transfer before it exits.
    local i
    for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    FLEET_ETCD_PID[$1]=""
}

etcdctl_at() {   # etcdctl_at N ARGS...: etcdctl against member N only
    local n=$1; shift
    ETCDCTL_API=3 ip netns exec "$FLEET_BR" "$FLEET_ETCDCTL" --endpoints "http://${FLEET_ETCD_IP[$n]}:2379" \
        --dial-timeout 1s --command-timeout 2s "$@"
}
etcdctl_all() {  # etcdctl_all ARGS...: etcdctl against the cluster
    ETCDCTL_API=3 ip netns exec "$FLEET_BR" "$FLEET_ETCDCTL" --endpoints "$FLEET_ENDPOINTS" \
        --dial-timeout 1s --command-timeout 2s "$@"
}

# etcd_healthy [N...]: waits (up to 15 s) until the given members (default: all running ones)
# answer `endpoint health` (a quorum read through each). Returns 1 if they do not.
etcd_healthy() {
    local members=("$@") n ok deadline=$((SECONDS + 15))
    if ((${#members[@]} == 0)); then
        for n in 1 2 3; do [ -n "${FLEET_ETCD_PID[$n]:-}" ] && members+=("$n"); done
    fi
    while [ $SECONDS -lt $deadline ]; do
        ok=1
        for n in "${members[@]}"; do
            etcdctl_at "$n" endpoint health >/dev/null 2>&1 || { ok=""; break; }
        done
        [ -n "$ok" ] && return 0
        sleep 0.2
    done
    return 1
}

etcd_up() {   # etcd_up: all three members, healthy; prints the logs and fails if not
    local n
    [ -x "$FLEET_ETCD" ] && [ -x "$FLEET_ETCDCTL" ] || { echo "fleet: etcd/etcdctl not installed" >&2; return 1; }
    for n in 1 2 3; do etcd_start "$n"; done
    etcd_healthy 1 2 3 && return 0
    for n in 1 2 3; do echo "--- etcd e$n log ---"; tail -20 "$FLEET_WORK/etcd$n/log"; done
    return 1
}

# etcd_curl N PATH JSON: a POST to member N's JSON gateway (etcd 3.4: /v3/...), prints the answer.
etcd_curl() {
    ip netns exec "$FLEET_BR" curl -s --max-time 3 "http://${FLEET_ETCD_IP[$1]}:2379$2" -d "$3"
}

# --- gateways -----------------------------------------------------------------------------------
# Gateway G (A, B, C) runs pknockd with table pknock_fleet, NFLOG group 31/32/33, its own state
# directory, control socket $FLEET_WORK/G/control.sock and metrics on 127.0.0.1:9640 in its namespace.
declare -A FLEET_GROUP=([A]=31 [B]=32 [C]=33)
FLEET_PKNOCKD=${FLEET_PKNOCKD:-${PKNOCKD:-}}
FLEET_PKNOCK=${FLEET_PKNOCK:-${PKNOCK:-}}

# gateway_config G EXTRA_TOML [FLEET_EXTRA_TOML]: writes G's pknock.toml: [daemon], [fleet] (node
# gw-a/b/c, the three endpoints, plus FLEET_EXTRA_TOML lines) and EXTRA_TOML (rules, clients).
# FLEET_EXTRA_TOML "-" leaves [fleet] out (a lone gateway: the benchmark's baseline).
gateway_config() {
    local g=$1 fleet
    fleet="[fleet]
endpoints = [\"http://${FLEET_ETCD_IP[1]}:2379\", \"http://${FLEET_ETCD_IP[2]}:2379\", \"http://${FLEET_ETCD_IP[3]}:2379\"]
node = \"${FLEET_NODE[$g]}\"
${3:-}"
    [ "${3:-}" = - ] && fleet=""
    ( umask 077; cat > "$FLEET_WORK/$g/pknock.toml" <<CONF
[daemon]
table = "pknock_fleet"
nflog_group = ${FLEET_GROUP[$g]}
state_directory = "$FLEET_WORK/$g/state"
control_socket = "$FLEET_WORK/$g/control.sock"
metrics_listen = "127.0.0.1:9640"

$fleet
$2
CONF
    )
}

# gateway_start G ARGS...: pknockd in G's namespace with G's config; waits until it has started.
# Its output goes to $FLEET_WORK/G/pknockd.log (appended across restarts).
gateway_start() {
    local g=$1 log="$FLEET_WORK/$1/pknockd.log" mark
    shift
    mark=0
    [ -f "$log" ] && mark=$(wc -l < "$log")
    ip netns exec "$(fleet_ns "$g")" "$FLEET_PKNOCKD" --config "$FLEET_WORK/$g/pknock.toml" "$@" >>"$log" 2>&1 &
    FLEET_GW_PID[$g]=$!
    for _ in $(seq 1 200); do
        if tail -n +"$((mark + 1))" "$log" 2>/dev/null | grep -q "pknockd started"; then return 0; fi
        if ! kill -0 "${FLEET_GW_PID[$g]}" 2>/dev/null; then
            echo "pknockd on $g exited early:"; tail -n +"$((mark + 1))" "$log"; unset "FLEET_GW_PID[$g]"; return 1
        fi
        sleep 0.05
    done
    echo "pknockd on $g did not start"; return 1
}

# gateway_stop G [SIGNAL]: stops G's pknockd (SIGTERM by default; KILL for a crash).
gateway_stop() {
    local pid=${FLEET_GW_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill "-${2:-TERM}" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "FLEET_GW_PID[$1]"
}

# gateway_service G PORT...: the TCP echo service G protects.
gateway_service() {
    local g=$1; shift
    ip netns exec "$(fleet_ns "$g")" python3 "$FLEET_SCRIPTS/lib/tcp.py" serve "$@" &
    FLEET_SERVICE_PID[$g]=$!
}

# gateway_partition G: drops all of G's traffic to and from the etcd members (a table of our own in
# G's namespace only; pknockd's table is untouched). gateway_heal G removes it.
gateway_partition() {
    fx "$1" nft -f - <<NFT
table inet pkf_partition {
    chain out { type filter hook output priority -10; ip daddr { ${FLEET_ETCD_IP[1]}, ${FLEET_ETCD_IP[2]}, ${FLEET_ETCD_IP[3]} } drop; }
    chain in { type filter hook input priority -10; ip saddr { ${FLEET_ETCD_IP[1]}, ${FLEET_ETCD_IP[2]}, ${FLEET_ETCD_IP[3]} } drop; }
}
NFT
}
gateway_heal() { fx "$1" nft delete table inet pkf_partition; }

# gateway_ctl G ARGS...: pknock against G's control socket (status, open, close, ...).
gateway_ctl() {
    local g=$1 cmd=$2; shift 2
    fx "$g" "$FLEET_PKNOCK" "$cmd" --control-socket "$FLEET_WORK/$g/control.sock" "$@"
}

# gateway_metrics G: G's Prometheus text.
gateway_metrics() {
    fx "$1" curl -s --max-time 3 http://127.0.0.1:9640/metrics
}
# gateway_metric G NAME: the value of metric NAME (no labels) at G, empty if absent.
gateway_metric() {
    gateway_metrics "$1" | awk -v name="$2" '$1 == name { print $2; exit }'
}

# gateway_has G RULE PEER: whether PEER is in G's RULE_allowed4/6 set in the kernel.
gateway_has() {
    local family=4
    [[ $3 == *:* ]] && family=6
    fx "$1" nft list set inet pknock_fleet "$2_allowed$family" 2>/dev/null | grep -qw -- "$3"
}

# gateway_timeout G RULE PEER: the remaining seconds of PEER's element in G's set (empty if none
# or no timeout).
gateway_timeout() {
    local family=4
    [[ $3 == *:* ]] && family=6
    fx "$1" nft -j list set inet pknock_fleet "$2_allowed$family" 2>/dev/null | python3 -c '
import json, sys
peer = sys.argv[1]
for item in json.load(sys.stdin)["nftables"]:
    for element in item.get("set", {}).get("elem", []):
        if isinstance(element, dict) and "elem" in element and element["elem"].get("val") == peer:
            print(element["elem"].get("expires", "")); sys.exit()' "$3" 2>/dev/null
}
