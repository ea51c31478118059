# Under attack (issue #5): floods, malformed packets and SPA replay on the real kernel (sourced by
# Scripts/netns-e2e.sh). Each scenario is bounded: floods stop after a fixed count or 5 s.

ATTACK_FLOOD="$PK_WORK/pk-flood"
cc -O2 -o "$ATTACK_FLOOD" Scripts/bench/flood.c || fail "cannot compile Scripts/bench/flood.c"
ATTACK_SERVER_MAC_A=$(s cat /sys/class/net/pkA$$/address)
ATTACK_SERVER_MAC_B=$(s cat /sys/class/net/pkB$$/address)
ATTACK_CLIENT_MAC_B=$(b cat /sys/class/net/eth0/address)

# attack_spa_payload SECRET_FILE ADDRESS: the SPA packet for ADDRESS in the current minute.
attack_spa_payload() {
    python3 - "$1" "$2" <<'PY'
import hashlib, hmac, socket, struct, sys, time
secret = open(sys.argv[1], 'rb').read().rstrip(b'\n')
message = socket.inet_aton(sys.argv[2]) + struct.pack('<I', int(time.time()) // 60)
sys.stdout.write(hmac.new(secret, message, hashlib.sha256).hexdigest() + '\n')
PY
}
# attack_send_udp NS HOST PORT FILE: one datagram carrying FILE's bytes (a captured packet, replayed).
attack_send_udp() {
    ip netns exec "$1" python3 -c "import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(open(sys.argv[3],'rb').read(), (sys.argv[1], int(sys.argv[2])))" "$2" "$3" "$4"
}
# attack_counter NAME: a counter from pknockd's "pknockd stopping" line (after stop_daemon).
attack_counter() {
    grep "pknockd stopping" "$PK_WORK/pknockd.last.log" | tail -1 | grep -o " $1=[0-9]*" | cut -d= -f2
}

scenario "a spoofed flood of first knocks from 150k IPv6 sources does not lock out a sequence or an SPA"
start_daemon --config "$CONFIG"
# 150,000 distinct sources in 2001:db8:ff00::/40 at 50k packets/s (3 s; at most 5 s). The rate
# suits the debug build CI tests; Scripts/bench/run.sh floods a release build at the sender's maximum.
( exec ip netns exec "$NS_B" "$ATTACK_FLOOD" eth0 "$ATTACK_SERVER_MAC_B" "$ATTACK_CLIENT_MAC_B" 2001:db8:2::1 2002 150000 50000 5 tcp \
    > "$PK_WORK/attack-flood.out" ) &
ATTACK_FLOOD_PID=$!
sleep 0.3
knock "$NS_A" 192.0.2.1 2002 2001 2004
expect open "$NS_A" 192.0.2.1 22 "the sequence opens 22 during the flood"
knock "$NS_A" 192.0.2.1 4000 --spa --secret-file "$PK_WORK/secrets/ftp.open"
expect open "$NS_A" 192.0.2.1 21 "an SPA opens 21 during the flood"
wait "$ATTACK_FLOOD_PID"
expect closed "$NS_B" 198.51.100.1 22 "the flooding side is not let in"
stop_daemon
ATTACK_SENT=$(grep -o 'sent=[0-9]*' "$PK_WORK/attack-flood.out" | cut -d= -f2)
ATTACK_PACKETS=$(attack_counter packets)
# Loss is measured by Scripts/bench/run.sh on a release build; a debug build may fall behind, so
# here it is reported, and only a daemon that processed nothing fails.
echo "  info: flood sent ${ATTACK_SENT:-?}, pknockd processed ${ATTACK_PACKETS:-?} packets, nflog.enobufs=$(attack_counter nflog.enobufs)"
[ "${ATTACK_PACKETS:-0}" -gt 50000 ] && pass "pknockd kept processing during the flood" || fail "pknockd processed ${ATTACK_PACKETS:-?} packets"
if grep -q "knock rejected\|attempt forgotten" "$PK_WORK/pknockd.last.log"; then
    fail "flood packets were logged one by one at the default level"
else
    pass "the flood is counted, not logged line by line"
fi

scenario "malformed packets of every kind reach the daemon without harm"
start_daemon --config "$CONFIG" --log-level debug
a python3 Scripts/bench/malformed.py eth0 "$ATTACK_SERVER_MAC_A" 192.0.2.2 192.0.2.1 2001:db8:1::2 2001:db8:1::1 >/dev/null \
    && pass "the malformed frames were sent" || fail "malformed.py failed"
sleep 0.3
kill -0 "$DAEMON_PID" 2>/dev/null && pass "pknockd is still running" || fail "pknockd died"
expect closed "$NS_A" 192.0.2.1 21 "no malformed SPA opened 21"
expect closed "$NS_A" 192.0.2.1 22 "no malformed knock opened 22"
knock "$NS_A" 192.0.2.1 2002 2001 2004
expect open "$NS_A" 192.0.2.1 22 "a genuine sequence afterwards still opens"
stop_daemon
[ "$(attack_counter packets.malformed)" -gt 0 ] 2>/dev/null \
    && pass "malformed packets are counted ($(attack_counter packets.malformed))" \
    || fail "no malformed packet was counted"

scenario "a captured SPA packet replayed in the same minute and after a restart opens nothing"
( umask 077; sed -e '/^state_directory *=/d' -e "s|^nflog_group = 17|nflog_group = 17\nstate_directory = \"$PK_WORK/state\"|" \
    "$CONFIG" > "$PK_WORK/replay.toml" )
attack_spa_payload "$PK_WORK/secrets/ftp.open" 192.0.2.2 > "$PK_WORK/captured.spa"
start_daemon --config "$PK_WORK/replay.toml" --log-level debug
attack_send_udp "$NS_A" 192.0.2.1 4000 "$PK_WORK/captured.spa"
expect open "$NS_A" 192.0.2.1 21 "the original packet opens 21"
knock "$NS_A" 192.0.2.1 4000 --spa --secret-file "$PK_WORK/secrets/ftp.close"
expect closed "$NS_A" 192.0.2.1 21 "the owner closes again"
attack_send_udp "$NS_A" 192.0.2.1 4000 "$PK_WORK/captured.spa"
expect closed "$NS_A" 192.0.2.1 21 "the replay in the same minute does not reopen"
expect_log "SPA minute already used" "the replay is blocked"
stop_daemon
# pknockd keeps the SPA replay memory in state_directory, so a restart forgets nothing.
start_daemon --config "$PK_WORK/replay.toml" --log-level debug
attack_send_udp "$NS_A" 192.0.2.1 4000 "$PK_WORK/captured.spa"
expect closed "$NS_A" 192.0.2.1 21 "the replay after a restart does not reopen"
expect_log "SPA minute already used" "the replay after a restart is blocked"
[ "$(stat -c %a "$PK_WORK/state/spa-replay" 2>/dev/null)" = 600 ] \
    && pass "the replay state file has mode 0600" || fail "state/spa-replay missing or not mode 0600"
stop_daemon
