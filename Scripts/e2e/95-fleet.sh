# Fleet (issue #16, Docs/fleet.md) end to end: three pknockd gateways A, B, C sharing grants through
# a 3-member etcd cluster, all in namespaces of their own (Scripts/lib/fleet.sh; sourced by
# Scripts/netns-e2e.sh, which has its own topology up already: this file uses none of it). The
# client knocks at one gateway and connects to another. About 80 s.
#
# Without etcd installed (Scripts/install-deps.sh installs Debian's etcd-server/etcd-client) the file
# is skipped, except under CI=true, where that is a failure.

if [ -z "$(command -v etcd)" ] || [ -z "$(command -v etcdctl)" ]; then
    CURRENT="fleet"
    echo "== fleet"
    if [ "${CI:-}" = true ]; then
        fail "etcd/etcdctl not installed (Scripts/install-deps.sh installs etcd-server etcd-client)"
    else
        echo "  skipped: etcd not installed (Scripts/install-deps.sh installs etcd-server etcd-client)"
    fi
else

FLEET_NO_TRAP=1
FLEET_PKNOCKD=$PKNOCKD
FLEET_PKNOCK=$PKNOCK
source Scripts/lib/fleet.sh
FLEET_SAVED_TRAP=$(trap -p EXIT)
FLEET_PREV_TRAP=${FLEET_SAVED_TRAP#trap -- \'}
FLEET_PREV_TRAP=${FLEET_PREV_TRAP%\' EXIT}
trap "fleet_down; ${FLEET_PREV_TRAP:-netns_down}" EXIT
CLIENT=$FLEET_CLIENT_IP

# fleet_wait in|out G RULE PEER [SECONDS]: waits (default 3 s) until PEER is in / out of G's set.
fleet_wait() {
    local want=$1 deadline=$((SECONDS + ${5:-${FLEET_WAIT:-3}}))
    while :; do
        if gateway_has "$2" "$3" "$4"; then [ "$want" = in ] && return 0
        else [ "$want" = out ] && return 0; fi
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}
# mirrored in|out RULE PEER WHAT G...: checks (with fleet_wait) every gateway G.
mirrored() {
    local want=$1 rule=$2 peer=$3 what=$4 g bad=""
    shift 4
    for g in "$@"; do fleet_wait "$want" "$g" "$rule" "$peer" || bad+=" $g"; done
    [ -z "$bad" ] && pass "$what" || fail "$what (not $want at:$bad)"
}
# fleet_log_has G REGEX WHAT: G's pknockd log matches REGEX (extended, case-insensitive) within 3 s.
fleet_log_has() {
    local deadline=$((SECONDS + 3))
    while [ $SECONDS -lt $deadline ]; do
        grep -qEi -- "$2" "$FLEET_WORK/$1/pknockd.log" && { pass "$3"; return; }
        sleep 0.1
    done
    fail "$3 ($1's log lacks '$2')"
}
# etcd_grant RULE PEER: the grant's value in etcd (empty if none).
etcd_grant() { etcdctl_all get --print-value-only "/pknock/grants/$1/$2" 2>/dev/null; }
# udp_send HOST PORT HEX: one UDP datagram from the client (a captured packet sent again).
udp_send() {
    fx client python3 -c '
import socket, sys
host = sys.argv[1]
family = socket.AF_INET6 if ":" in host else socket.AF_INET
socket.socket(family, socket.SOCK_DGRAM).sendto(bytes.fromhex(sys.argv[3]), (host, int(sys.argv[2])))' "$@"
}
cknock() { fx client "$FLEET_PKNOCK" knock "$@" --delay 10; }
laptop() { fx client "$FLEET_PKNOCK" knock --spa2 --client-id laptop --key-file "$FLEET_WORK/laptop" "$@"; }
metric_at_least() {   # metric_at_least G NAME MIN WHAT: polls G's metrics for up to 3 s
    local value deadline=$((SECONDS + 3))
    while :; do
        value=$(gateway_metric "$1" "$2")
        if [ -n "$value" ] && awk -v v="$value" -v m="$3" 'BEGIN { exit !(v >= m) }'; then pass "$4"; return; fi
        [ $SECONDS -lt $deadline ] || break
        sleep 0.2
    done
    fail "$4 ($2 at $1 is '${value}')"
}
# status_fleet G: G's `pknock status` fleet line.
status_fleet() { gateway_ctl "$1" status 2>&1 | grep '^fleet:'; }

scenario "fleet: three gateways and a 3-member etcd cluster come up"
fleet_up
if etcd_up; then pass "the 3-member etcd cluster is healthy"; else fail "the etcd cluster did not come up"; fi
mkdir -p "$FLEET_WORK/secrets"
( umask 077
  printf 'open-sesame-4000\n' > "$FLEET_WORK/secrets/ftp.open"
  printf 'close-sesame-4000\n' > "$FLEET_WORK/secrets/ftp.close" )
"$FLEET_PKNOCK" keygen --type ed25519 --out "$FLEET_WORK/laptop" --force >/dev/null
install -m 0600 "$FLEET_WORK/laptop.pub" "$FLEET_WORK/secrets/laptop.pub"
FLEET_RULES="
[[rule]]
name = \"SSH\"
knock = [2002, 2001, 2004]
time = 5
autoclose = \"60s\"
protect = [22]

[[rule]]
name = \"FTP\"
knock = [\"4000:udp\"]
open_secret_file = \"$FLEET_WORK/secrets/ftp.open\"
close_secret_file = \"$FLEET_WORK/secrets/ftp.close\"
autoclose = \"10m\"
protect = [21]

[[rule]]
name = \"SHORT\"
knock = [\"3000:udp\"]
autoclose = \"3s\"
protect = [2222]

[[rule]]
name = \"V2\"
knock = [\"4500:udp\"]
spa = \"v2\"
protect = [2240]

[[client]]
id = \"laptop\"
ed25519_public_key_file = \"$FLEET_WORK/secrets/laptop.pub\"
rules = [\"V2\"]"
for g in A B C; do
    gateway_config "$g" "$FLEET_RULES" 'commit_timeout = "1s"'   # a loaded 2-core CI machine; not a latency test
    gateway_service "$g" 22 21 2222 2240
    gateway_start "$g" --log-level debug && pass "pknockd with [fleet] starts on $g" || fail "pknockd on $g did not start"
done
for g in A B C; do
    line=""
    for _ in $(seq 1 30); do line=$(status_fleet "$g"); [[ $line == *connected* && $line != *unreachable* ]] && break; sleep 0.1; done
    [[ $line == "fleet: node ${FLEET_NODE[$g]}, connected"* ]] \
        && pass "pknock status at $g: $line" || fail "pknock status at $g has no connected fleet line ('$line')"
done

scenario "fleet: a knock at A opens at B and C"
expect closed "$FLEET_NS_CLIENT" "${FLEET_IP[B]}" 22 "22 at B closed before knocking"
cknock "${FLEET_IP[A]}" 2002 2001 2004
expect open "$FLEET_NS_CLIENT" "${FLEET_IP[A]}" 22 "the knock at A opens 22 at A"
mirrored in SSH "$CLIENT" "the grant is mirrored into B's and C's sets" B C
expect open "$FLEET_NS_CLIENT" "${FLEET_IP[B]}" 22 "22 at B accepts the client"
expect open "$FLEET_NS_CLIENT" "${FLEET_IP[C]}" 22 "22 at C accepts the client"
value=$(etcd_grant SSH "$CLIENT")
[[ $value == *'"origin":"gw-a"'* && $value == *'"protocol":"knock"'* && $value == *'"expires":'* ]] \
    && pass "etcd holds the grant: $value" || fail "etcd's /pknock/grants/SSH/$CLIENT is '$value'"
left=$(gateway_timeout C SSH "$CLIENT")
[[ -n $left ]] && ((left > 40 && left <= 60)) && pass "C's element carries the remaining time ($left s of 60)" \
    || fail "C's element timeout is '$left' (expected 40..60 s)"
metric_at_least A pknock_fleet_connected 1 "A's pknock_fleet_connected is 1"
metric_at_least A pknock_fleet_commit_latency_seconds_count 1 "A's commit latency histogram counted the grant"
metric_at_least B pknock_fleet_revision 2 "B's pknock_fleet_revision follows etcd"

scenario "fleet: pknock close at B closes everywhere"
gateway_ctl B close SSH "$CLIENT" >/dev/null && pass "pknock close SSH at B succeeds" || fail "pknock close at B failed"
mirrored out SSH "$CLIENT" "the grant leaves A's, B's and C's sets" A B C
expect closed "$FLEET_NS_CLIENT" "${FLEET_IP[A]}" 22 "22 at A is closed again"
[ -z "$(etcd_grant SSH "$CLIENT")" ] && pass "the etcd key is deleted" || fail "the grant is still in etcd"

scenario "fleet: SPA v1 at A opens at B and C; a close knock at B closes everywhere; a replay at C is refused"
FLEET_V1=$(cknock "${FLEET_IP[A]}" 4000 --spa --secret-file "$FLEET_WORK/secrets/ftp.open" --dry-run \
    | sed -n 's/^payload: //p')
FLEET_V1_HEX=$(printf '%s' "${FLEET_V1% + newline}" | od -An -tx1 | tr -d ' \n')
[[ $FLEET_V1 == *" + newline" ]] && FLEET_V1_HEX+=0a
[ -n "$FLEET_V1_HEX" ] && pass "--dry-run gives the v1 payload" || fail "no v1 payload from --dry-run"
udp_send "${FLEET_IP[A]}" 4000 "$FLEET_V1_HEX"
mirrored in FTP "$CLIENT" "a v1 SPA at A is mirrored to B and C" A B C
expect open "$FLEET_NS_CLIENT" "${FLEET_IP[C]}" 21 "21 at C accepts the client"
[[ $(etcd_grant FTP "$CLIENT") == *'"protocol":"spa1"'* ]] && pass "etcd's grant says spa1" \
    || fail "etcd's FTP grant is '$(etcd_grant FTP "$CLIENT")'"
cknock "${FLEET_IP[B]}" 4000 --spa --secret-file "$FLEET_WORK/secrets/ftp.close"
mirrored out FTP "$CLIENT" "the close knock at B removes the grant at A, B and C" A B C
udp_send "${FLEET_IP[C]}" 4000 "$FLEET_V1_HEX"
sleep 1
if gateway_has C FTP "$CLIENT" || gateway_has A FTP "$CLIENT"; then fail "the v1 packet replayed at C opened again"
else pass "the v1 packet replayed at C (same minute) opens nothing"; fi
fleet_log_has C "replay|already used" "C's log says the v1 packet was already used"

scenario "fleet: SPA v2 at A opens at B and C; a captured packet replayed at C is refused"
FLEET_V2=$(laptop --rule V2 --dry-run "${FLEET_IP[A]}" 4500 | sed -n 's/^packet: //p')
[ -n "$FLEET_V2" ] && pass "--dry-run gives the v2 packet" || fail "no v2 packet from --dry-run"
udp_send "${FLEET_IP[A]}" 4500 "$FLEET_V2"
mirrored in V2 "$CLIENT" "a v2 SPA at A is mirrored to B and C" A B C
expect open "$FLEET_NS_CLIENT" "${FLEET_IP[B]}" 2240 "2240 at B accepts the client"
laptop -6 --rule V2 "${FLEET_IP6[A]}" 4500
mirrored in V2 "$FLEET_CLIENT_IP6" "a v2 SPA over IPv6 at A is mirrored to B and C" B C
expect open "$FLEET_NS_CLIENT" "${FLEET_IP6[C]}" 2240 "2240 at C accepts the client over IPv6"
gateway_ctl A close V2 "$CLIENT" >/dev/null
mirrored out V2 "$CLIENT" "pknock close at A removes the v2 grant everywhere" A B C
udp_send "${FLEET_IP[C]}" 4500 "$FLEET_V2"
sleep 1
if gateway_has C V2 "$CLIENT"; then fail "the captured v2 packet replayed at C opened 2240"
else pass "the captured v2 packet replayed at C opens nothing (fleet-wide replay memory)"; fi
expect closed "$FLEET_NS_CLIENT" "${FLEET_IP[C]}" 2240 "2240 at C stays closed after the replay"
fleet_log_has C "replay" "C's log says replay"

scenario "fleet: autoclose expires everywhere"
cknock "${FLEET_IP[A]}" 3000:udp
mirrored in SHORT "$CLIENT" "a SHORT grant (autoclose 3 s) at A is mirrored to B and C" A B C
[ -n "$(etcdctl_all get -w json "/pknock/grants/SHORT/$CLIENT" | grep -oE '"lease": ?[1-9][0-9]*')" ] \
    && pass "the SHORT grant's etcd key is on a lease" || fail "the SHORT grant's etcd key has no lease"
sleep 3
mirrored out SHORT "$CLIENT" "the SHORT grant has expired at A, B and C" A B C
expect closed "$FLEET_NS_CLIENT" "${FLEET_IP[B]}" 2222 "2222 at B is closed after autoclose"
deadline=$((SECONDS + 12))
while [ -n "$(etcd_grant SHORT "$CLIENT")" ] && [ $SECONDS -lt $deadline ]; do sleep 0.3; done
[ -z "$(etcd_grant SHORT "$CLIENT")" ] && pass "the lease removed the key from etcd" || fail "the SHORT key outlived its lease"

scenario "fleet: killing the etcd member C talks to changes nothing"
# The victim is the member C's client is connected to (so C's next grant meets the dead member),
# else the leader.
leader=$(etcdctl_all endpoint status 2>/dev/null | awk -F', ' '$5 == "true" { print $1 }')
used=$(fx C ss -Htn state established '( dport = :2379 )' 2>/dev/null | awk '{ sub(/:2379$/, "", $4); print $4; exit }')
victim=""
for n in 1 2 3; do [ "$used" = "${FLEET_ETCD_IP[$n]}" ] && victim=$n; done
if [ -z "$victim" ]; then
    for n in 1 2 3; do [ "$leader" = "http://${FLEET_ETCD_IP[$n]}:2379" ] && victim=$n; done
fi
[ -n "$victim" ] || victim=1
role=follower
[ "$leader" = "http://${FLEET_ETCD_IP[$victim]}:2379" ] && role=leader
echo "  killing e$victim (C's member: ${used:-unknown}; the $role)"
others=()
for n in 1 2 3; do [ "$n" = "$victim" ] || others+=("$n"); done
etcd_stop "$victim" KILL
etcd_healthy "${others[@]}" && pass "the other two members serve (a new leader if needed)" || fail "no quorum after killing e$victim"
# The first grant after the member died: C's client meets the dead member (refused) and moves on
# within commit_timeout; no second knock.
cknock "${FLEET_IP[C]}" 2002 2001 2004
FLEET_WAIT=5 mirrored in SSH "$CLIENT" "with e$victim dead, a knock at C opens at A and B" A B C
expect open "$FLEET_NS_CLIENT" "${FLEET_IP[A]}" 22 "22 at A accepts the client"
gateway_ctl A close SSH "$CLIENT" >/dev/null
mirrored out SSH "$CLIENT" "a close at A still closes everywhere" A B C
etcd_start "$victim"
etcd_healthy 1 2 3 && pass "e$victim rejoins" || fail "e$victim did not rejoin"

scenario "fleet: pknockd on B killed (-9) and restarted resyncs"
laptop --rule V2 "${FLEET_IP[A]}" 4500
mirrored in V2 "$CLIENT" "a v2 grant is at B before the crash" B
gateway_stop B KILL
gateway_ctl A close V2 "$CLIENT" >/dev/null
cknock "${FLEET_IP[A]}" 2002 2001 2004
fleet_wait in C SSH "$CLIENT" && fleet_wait out C V2 "$CLIENT"
gateway_has B V2 "$CLIENT" && pass "the kernel keeps B's stale element while pknockd is down" \
    || fail "B's element vanished without pknockd"
gateway_start B --log-level debug && pass "pknockd on B restarts" || fail "pknockd on B did not restart"
FLEET_WAIT=5 mirrored in SSH "$CLIENT" "B picks up the grant made while it was down" B
mirrored out V2 "$CLIENT" "B drops the grant closed while it was down" B
expect open "$FLEET_NS_CLIENT" "${FLEET_IP[B]}" 22 "22 at B accepts the client after the restart"
metric_at_least B pknock_fleet_connected 1 "B is connected again"
gateway_ctl B close SSH "$CLIENT" >/dev/null
mirrored out SSH "$CLIENT" "the SSH grant is closed again everywhere" A B C

scenario "fleet: A partitioned from etcd refuses grants, lets mirrored ones lapse, resyncs on healing"
cknock "${FLEET_IP[B]}" 3000:udp
mirrored in SHORT "$CLIENT" "a SHORT grant at B is mirrored to A" A
gateway_partition A
gateway_has A SHORT "$CLIENT" && pass "partitioned, A keeps the grant it mirrored (no flush)" \
    || fail "A dropped its mirrored SHORT grant at once when partitioned"
cknock "${FLEET_IP[A]}" 2002 2001 2004
fleet_log_has A "grant refused: fleet unreachable" "A logs 'grant refused: fleet unreachable'"
if fleet_wait in A SSH "$CLIENT" 1; then fail "A granted SSH while partitioned"; else pass "A refuses the knock while partitioned"; fi
expect closed "$FLEET_NS_CLIENT" "${FLEET_IP[A]}" 22 "22 at A stays closed"
metric_at_least A pknock_fleet_refused_grants_total 1 "A's pknock_fleet_refused_grants_total counts the refusal"
if gateway_has B SSH "$CLIENT" || gateway_has C SSH "$CLIENT"; then fail "A's refused knock opened elsewhere"
else pass "A's refused knock opened nothing at B or C"; fi
mirrored out SHORT "$CLIENT" "A's mirrored SHORT grant lapses by its kernel timeout" A
cknock "${FLEET_IP[B]}" 2002 2001 2004
mirrored in SSH "$CLIENT" "B and C go on granting (a knock at B opens at C)" B C
line=""
for _ in $(seq 1 40); do line=$(status_fleet A); [[ $line == *unreachable* ]] && break; sleep 0.25; done
[[ $line == "fleet: node gw-a, unreachable"* ]] && pass "pknock status at A: $line" \
    || fail "pknock status at A does not say unreachable ('$line')"
for _ in $(seq 1 15); do [ "$(gateway_metric A pknock_fleet_connected)" = 0 ] && break; sleep 0.2; done
[ "$(gateway_metric A pknock_fleet_connected)" = 0 ] && pass "A's pknock_fleet_connected is 0" \
    || fail "A's pknock_fleet_connected is '$(gateway_metric A pknock_fleet_connected)'"
# Compact etcd past everything A saw: its watch cannot simply resume; it must range again.
revision=$(etcdctl_all get -w json /pknock/none | grep -oE '"revision":[0-9]+' | head -1 | cut -d: -f2)
etcdctl_all compact "$revision" >/dev/null && pass "etcd compacted to revision $revision during the partition" \
    || fail "etcdctl compact $revision failed"
gateway_heal A
FLEET_WAIT=10 mirrored in SSH "$CLIENT" "healed, A resyncs and mirrors the grant B made meanwhile" A
expect open "$FLEET_NS_CLIENT" "${FLEET_IP[A]}" 22 "22 at A accepts the client after healing"
metric_at_least A pknock_fleet_resyncs_total 1 "A's pknock_fleet_resyncs_total counts the resync"
gateway_ctl A close SSH "$CLIENT" >/dev/null
mirrored out SSH "$CLIENT" "after healing, a close at A closes everywhere" A B C

for g in A B C; do
    if ! kill -0 "${FLEET_GW_PID[$g]:-0}" 2>/dev/null; then fail "pknockd on $g died during the fleet tests"; fi
done
if [ "$FAILED" != 0 ]; then
    for g in A B C; do echo "--- pknockd $g log (tail) ---"; tail -40 "$FLEET_WORK/$g/pknockd.log"; done
fi
fleet_down
eval "${FLEET_SAVED_TRAP:-trap netns_down EXIT}"
fi
