# fwknop interop (issue #15) end to end: Debian's real `fwknop` client (fwknop-client) opens
# pknockd's `spa = "fwknop"` rules; replays (also after a restart), wrong keys, an expired
# timestamp, a port the rule does not protect and a packet without HMAC are refused with debug
# logs naming why. Sourced by Scripts/netns-e2e.sh; skipped when fwknop is not installed.
#
# Rule FWK (knock 62201/udp, protects 2250/tcp and 2251/udp, autoclose 60 s); client "laptop"
# with `fwknop --key-gen` keys.

if ! command -v fwknop >/dev/null; then
    echo "== fwknop: skipped (fwknop-client not installed; Scripts/install-deps.sh installs it)"
else
FWK_HOME="$PK_WORK/fwknop-home"          # the fwknop client's HOME: its rc and run files stay here
mkdir -p "$FWK_HOME" "$PK_WORK/keys"
HOME="$FWK_HOME" fwknop --key-gen > "$FWK_HOME/laptop.keys"
HOME="$FWK_HOME" fwknop --key-gen > "$FWK_HOME/other.keys"
( umask 077; cp "$FWK_HOME/laptop.keys" "$PK_WORK/keys/laptop.fwknop"; chmod 0600 "$PK_WORK/keys/laptop.fwknop" )
fwk_key() { sed -n "s/^$2: //p" "$FWK_HOME/$1.keys"; }

FWK_CONFIG='
[[rule]]
name = "FWK"
spa = "fwknop"
autoclose = 60
protect = [2250, "2251:udp"]

[[client]]
id = "laptop"
fwknop_key_file = "keys/laptop.fwknop"
rules = ["FWK"]'

ip netns exec "$NS_S" python3 "$PK_SCRIPTS/lib/tcp.py" serve 2250 &
FWK_SERVICE_PID=$!
trap 'kill "$FWK_SERVICE_PID" 2>/dev/null; netns_down' EXIT
sleep 0.3

# fwk NS KEYS ARGS...: the real fwknop client in NS with KEYS (laptop/other) and HMAC, to 192.0.2.1
# unless ARGS say otherwise.
fwk() {
    local ns=$1 keys=$2; shift 2
    ip netns exec "$ns" env HOME="$FWK_HOME" fwknop --no-rc-file --no-save-args \
        --key-base64-rijndael "$(fwk_key "$keys" KEY_BASE64)" --key-base64-hmac "$(fwk_key "$keys" HMAC_KEY_BASE64)" --use-hmac \
        "$@" >/dev/null 2>&1
}
# fwk_send NS FILE HOST: sends FILE's packet (fwknop --save-packet) as one UDP datagram to HOST:62201.
fwk_send() {
    ip netns exec "$1" python3 -c '
import socket, sys
data = open(sys.argv[1], "rb").read().strip()
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(data, (sys.argv[2], 62201))' "$2" "$3"
}
fwk_log_has() {
    local deadline=$((SECONDS + 3))
    while [ $SECONDS -lt $deadline ]; do
        grep -qEi -- "$1" "$PK_WORK/pknockd.log" && { pass "$2"; return; }
        sleep 0.1
    done
    fail "$2 (log lacks '$1')"
}

# fwk_log_count REGEX N WHAT: at least N lines of pknockd's log (since start) match REGEX.
fwk_log_count() {
    local deadline=$((SECONDS + 3))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(grep -cEi -- "$1" "$PK_WORK/pknockd.log")" -ge "$2" ] && { pass "$3"; return; }
        sleep 0.1
    done
    fail "$3 (fewer than $2 log lines match '$1')"
}

scenario "fwknop: the real client opens pknockd (TCP and UDP requests, -a and -s)"
write_config "$FWK_CONFIG"
start_daemon --config "$CONFIG" --log-level debug
expect closed "$NS_A" 192.0.2.1 2250 "2250 closed before the fwknop packet"
fwk "$NS_A" laptop -A tcp/2250 -a 192.0.2.2 -D 192.0.2.1 && pass "fwknop -A tcp/2250 -a 192.0.2.2 exits 0" || fail "fwknop failed"
expect open "$NS_A" 192.0.2.1 2250 "the real fwknop client's packet (-a ADDR, tcp) opens 2250"
expect closed "$NS_B" 198.51.100.1 2250 "B still cannot reach 2250"
fwk "$NS_B" laptop -A udp/2251 -s -D 198.51.100.1
expect open "$NS_B" 198.51.100.1 2250 "a UDP access request with -s (0.0.0.0: the source) opens the rule for B"
fwk_log_has "peer allowed.*198\.51\.100\.2|198\.51\.100\.2.*peer allowed" "the log shows B allowed"

scenario "fwknop: refused packets (wrong keys, expired, unprotected port, no HMAC), with reasons"
write_config "$FWK_CONFIG"
start_daemon --config "$CONFIG" --log-level debug
fwk "$NS_A" other -A tcp/2250 -a 192.0.2.2 -D 192.0.2.1
expect closed "$NS_A" 192.0.2.1 2250 "other keys open nothing"
fwk_log_has "bad HMAC" "the log says bad HMAC"
fwk "$NS_A" laptop -A tcp/2250 -a 192.0.2.2 -D 192.0.2.1 --time-offset-minus 5m
expect closed "$NS_A" 192.0.2.1 2250 "a packet five minutes old (--time-offset-minus 5m) opens nothing"
fwk_log_has "outside clock window" "the log says outside clock window"
fwk "$NS_A" laptop -A tcp/23 -a 192.0.2.2 -D 192.0.2.1
expect closed "$NS_A" 192.0.2.1 2250 "a request for 23/tcp, which the rule does not protect, opens nothing"
fwk_log_has "tcp/23 asked for is not protected" "the log names the unprotected port"
grep -i "fwknop.reason" "$PK_WORK/pknockd.log" | head -3 | sed 's/^/       log: /' 
ip netns exec "$NS_A" env HOME="$FWK_HOME" fwknop --no-rc-file --no-save-args \
    --key-base64-rijndael "$(fwk_key laptop KEY_BASE64)" -A tcp/2250 -a 192.0.2.2 -D 192.0.2.1 >/dev/null 2>&1
expect closed "$NS_A" 192.0.2.1 2250 "a packet without HMAC (no --use-hmac) opens nothing"
fwk_log_count "bad HMAC" 2 "the log says bad HMAC for the packet without HMAC too"
stop_daemon

scenario "fwknop: a captured packet opens once, not again, not after a restart"
write_config "$FWK_CONFIG"
start_daemon --config "$CONFIG" --log-level debug
FWK_PACKET="$PK_WORK/fwknop.packet"
fwk "$NS_A" laptop -A tcp/2250 -s -D 192.0.2.1 -T -B "$FWK_PACKET"
[ -s "$FWK_PACKET" ] && pass "fwknop --test --save-packet wrote a packet" || fail "no packet saved"
fwk_send "$NS_A" "$FWK_PACKET" 192.0.2.1
expect open "$NS_A" 192.0.2.1 2250 "the captured packet opens once"
fwk_send "$NS_B" "$FWK_PACKET" 198.51.100.1
expect closed "$NS_B" 198.51.100.1 2250 "the same packet from B is refused"
fwk_log_has "replayed" "the log says replayed"
stop_daemon
# No `scenario`: the saved digests in $PK_WORK/state must survive the restart.
start_daemon --config "$CONFIG" --log-level debug
fwk_send "$NS_B" "$FWK_PACKET" 198.51.100.1
expect closed "$NS_B" 198.51.100.1 2250 "the packet is still refused after a restart"
fwk_log_has "replayed" "the log says replayed after the restart"
stop_daemon

scenario "fwknop: pknock knock --fwknop opens pknockd"
write_config "$FWK_CONFIG"
start_daemon --config "$CONFIG" --log-level debug
expect closed "$NS_A" 192.0.2.1 2250 "2250 closed before pknock's fwknop packet"
ip netns exec "$NS_A" "$PKNOCK" knock --fwknop --key-file "$PK_WORK/keys/laptop.fwknop" --access tcp/2250 192.0.2.1 \
    && pass "pknock knock --fwknop exits 0" || fail "pknock knock --fwknop failed"
expect open "$NS_A" 192.0.2.1 2250 "pknock's fwknop packet opens 2250"
ip netns exec "$NS_B" "$PKNOCK" knock --fwknop --key-file "$PK_WORK/keys/laptop.fwknop" --access tcp/2250 --address 0.0.0.0 \
    --fw-timeout 2 198.51.100.1
expect open "$NS_B" 198.51.100.1 2250 "--address 0.0.0.0 opens for the source the server sees"
sleep 2.5
expect closed "$NS_B" 198.51.100.1 2250 "--fw-timeout 2 (under the rule's 60 s) closes after 2 s"
stop_daemon

scenario "fwknop: pknock client-config's .fwknoprc stanza opens pknockd; its QR code decodes back"
write_config "$FWK_CONFIG"
start_daemon --config "$CONFIG" --log-level debug
"$PKNOCK" client-config --config "$CONFIG" --server 192.0.2.1 FWK --qr-image "$PK_WORK/fwk-qr.pgm" > "$PK_WORK/client-config.out" \
    && pass "pknock client-config FWK exits 0" || fail "pknock client-config FWK failed"
( umask 077; sed -n '/^\[FWK\]/,/^$/p' "$PK_WORK/client-config.out" > "$FWK_HOME/.fwknoprc" )
expect closed "$NS_A" 192.0.2.1 2250 "2250 closed before fwknop -n FWK"
ip netns exec "$NS_A" env HOME="$FWK_HOME" fwknop --no-save-args -n FWK >/dev/null 2>&1 \
    && pass "fwknop -n FWK with the exported stanza exits 0" || fail "fwknop -n FWK failed"
expect open "$NS_A" 192.0.2.1 2250 "the exported .fwknoprc stanza opens 2250"
if command -v zbarimg >/dev/null; then
    FWK_QR=$(zbarimg -q --raw "$PK_WORK/fwk-qr.pgm" 2>/dev/null)
    [ "$FWK_QR" = "KEY_BASE64:$(fwk_key laptop KEY_BASE64) HMAC_KEY_BASE64:$(fwk_key laptop HMAC_KEY_BASE64)" ] \
        && pass "the QR code decodes (zbarimg) to KEY_BASE64:… HMAC_KEY_BASE64:…" || fail "the QR code decodes to '$FWK_QR'"
fi
stop_daemon

if ! command -v fwknopd >/dev/null; then
    echo "== fwknop: pknock knock --fwknop against fwknopd: skipped (fwknop-server not installed)"
else
scenario "fwknop: pknock knock --fwknop opens Debian's fwknopd (in the server namespace only)"
# fwknopd sniffs the server's veth toward A and drives iptables-nft inside $NS_S (its own
# FWKNOP_INPUT chain); every file it uses is under $PK_WORK. Stopped by its PID.
FWKD="$PK_WORK/fwknopd"
mkdir -p "$FWKD/run"
( umask 077
  printf 'PCAP_INTF pkA%s\nENABLE_PCAP_PROMISC N\nFIREWALL_EXE %s\n' "$$" "$(command -v iptables)" > "$FWKD/fwknopd.conf"
  printf 'SOURCE ANY\nKEY_BASE64 %s\nHMAC_KEY_BASE64 %s\nFW_ACCESS_TIMEOUT 30\n' \
      "$(fwk_key laptop KEY_BASE64)" "$(fwk_key laptop HMAC_KEY_BASE64)" > "$FWKD/access.conf" )
ip netns exec "$NS_S" fwknopd -f -c "$FWKD/fwknopd.conf" -a "$FWKD/access.conf" -i "pkA$$" -d "$FWKD/digest.cache" \
    -p "$FWKD/fwknopd.pid" -r "$FWKD/run" > "$FWKD/log" 2>&1 &
FWKD_PID=$!
for _ in $(seq 1 50); do grep -q "Starting fwknopd" "$FWKD/log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
fwkd_rules() { s iptables -S FWKNOP_INPUT 2>/dev/null; }
fwkd_rules | grep -q -- "-s 192.0.2.2/32" && fail "fwknopd already allows 192.0.2.2" || pass "fwknopd allows nobody before the packet"
ip netns exec "$NS_A" "$PKNOCK" knock --fwknop --key-file "$PK_WORK/keys/laptop.fwknop" --access tcp/2250 192.0.2.1 \
    && pass "pknock knock --fwknop to fwknopd exits 0" || fail "pknock knock --fwknop to fwknopd failed"
FWKD_OK=""
for _ in $(seq 1 30); do fwkd_rules | grep -q -- "-s 192.0.2.2/32.*--dport 2250" && { FWKD_OK=1; break; }; sleep 0.1; done
fwkd_rules | grep -- "--dport 2250" | sed 's/^/       fwknopd rule: /'
[ -n "$FWKD_OK" ] && pass "fwknopd accepted pknock's packet and opened 192.0.2.2 -> tcp/2250" \
    || { fail "fwknopd did not open 2250 for pknock's packet"; sed 's/^/       fwknopd: /' "$FWKD/log" | tail -15; }
kill "$FWKD_PID" 2>/dev/null
wait "$FWKD_PID" 2>/dev/null
fi
kill "$FWK_SERVICE_PID" 2>/dev/null
wait "$FWK_SERVICE_PID" 2>/dev/null
trap netns_down EXIT
fi
