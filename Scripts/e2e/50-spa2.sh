# SPA v2 (issue #7, Docs/spa-v2.md) end to end: `pknock keygen` keys, `pknock knock --spa2`
# against pknockd's [[client]] entries (sourced by Scripts/netns-e2e.sh). Ed25519 and HMAC clients,
# replay (also across a restart), unknown clients and keys, revocation by reload, named addresses,
# IPv6.
#
# Rules V2 (knock 4500, may name another address, protects 2240) and V2N (knock 4501, may not,
# protects 2241); clients laptop (Ed25519, may name an address) and phone (HMAC, may not).

SPA2_KEYS="$PK_WORK/spa2-client"     # the clients' own files
mkdir -p "$SPA2_KEYS" "$PK_WORK/keys"
for key in laptop stranger; do
    "$PKNOCK" keygen --type ed25519 --out "$SPA2_KEYS/$key" --force >/dev/null
done
"$PKNOCK" keygen --type hmac --out "$SPA2_KEYS/phone" --force >/dev/null
( umask 077
  cp "$SPA2_KEYS/laptop.pub" "$PK_WORK/keys/laptop.pub"
  cp "$SPA2_KEYS/phone" "$PK_WORK/keys/phone.key"
  chmod 0600 "$PK_WORK/keys/laptop.pub" "$PK_WORK/keys/phone.key" )

SPA2_RULES='
[[rule]]
name = "V2"
knock = ["4500:udp"]
spa = "v2"
allow_named_address = true
protect = [2240]

[[rule]]
name = "V2N"
knock = ["4501:udp"]
spa = "v2"
protect = [2241]'

SPA2_LAPTOP='
[[client]]
id = "laptop"
ed25519_public_key_file = "keys/laptop.pub"
rules = ["V2", "V2N"]
may_name_address = true'

SPA2_PHONE='
[[client]]
id = "phone"
hmac_key_file = "keys/phone.key"
rules = ["V2"]'

ip netns exec "$NS_S" python3 "$PK_SCRIPTS/lib/tcp.py" serve 2240 2241 &
SPA2_SERVICE_PID=$!
trap 'kill "$SPA2_SERVICE_PID" 2>/dev/null; netns_down' EXIT
sleep 0.3

# laptop NS ARGS... / phone NS ARGS...: pknock knock --spa2 as that client (ARGS: --rule, host, port...).
laptop() { local ns=$1; shift; ip netns exec "$ns" "$PKNOCK" knock --spa2 --client-id laptop --key-file "$SPA2_KEYS/laptop" "$@"; }
phone() {
    local ns=$1; shift
    ip netns exec "$ns" "$PKNOCK" knock --spa2 --client-id phone --key-type hmac --key-file "$SPA2_KEYS/phone" "$@"
}
# spa2_send NS HEX HOST PORT: sends the bytes HEX as one UDP datagram from NS (a captured packet).
spa2_send() {
    ip netns exec "$1" python3 -c '
import socket, sys
host = sys.argv[2]
family = socket.AF_INET6 if ":" in host else socket.AF_INET
socket.socket(family, socket.SOCK_DGRAM).sendto(bytes.fromhex(sys.argv[1]), (host, int(sys.argv[3])))' "$2" "$3" "$4"
}
# spa2_log_has REGEX WHAT: pknockd's log (since start) matches REGEX (extended, case-insensitive).
spa2_log_has() {
    local deadline=$((SECONDS + 3))
    while [ $SECONDS -lt $deadline ]; do
        grep -qEi -- "$1" "$PK_WORK/pknockd.log" && { pass "$2"; return; }
        sleep 0.1
    done
    fail "$2 (log lacks '$1')"
}

scenario "SPA v2: Ed25519 and HMAC clients open, over IPv4 and IPv6"
write_config "$SPA2_RULES$SPA2_LAPTOP$SPA2_PHONE"
start_daemon --config "$CONFIG" --log-level debug
expect closed "$NS_A" 192.0.2.1 2240 "2240 closed before knocking"
laptop "$NS_A" --rule V2 192.0.2.1 4500
expect open "$NS_A" 192.0.2.1 2240 "an Ed25519 v2 packet opens 2240"
expect closed "$NS_B" 198.51.100.1 2240 "B still cannot reach 2240"
phone "$NS_B" --rule V2 198.51.100.1 4500
expect open "$NS_B" 198.51.100.1 2240 "an HMAC v2 packet opens 2240"
expect closed "$NS_A" 2001:db8:1::1 2240 "A closed over IPv6 before its IPv6 knock"
laptop "$NS_A" -6 --rule V2 2001:db8:1::1 4500
expect open "$NS_A" 2001:db8:1::1 2240 "an Ed25519 v2 packet from IPv6 opens 2240 over IPv6"
phone "$NS_B" -6 --rule V2 2001:db8:2::1 4500
expect open "$NS_B" 2001:db8:2::1 2240 "an HMAC v2 packet from IPv6 opens 2240 over IPv6"
expect closed "$NS_B" 198.51.100.1 2241 "phone may not open V2N"
phone "$NS_B" --rule V2N 198.51.100.1 4501
expect closed "$NS_B" 198.51.100.1 2241 "a client cannot open a rule it is not listed for"
laptop "$NS_A" --rule V2N 192.0.2.1 4500
expect closed "$NS_A" 192.0.2.1 2241 "a packet naming V2N at V2's knock port opens nothing"
stop_daemon

scenario "SPA v2 from a client profile"
write_config "$SPA2_RULES$SPA2_LAPTOP$SPA2_PHONE"
start_daemon --config "$CONFIG" --log-level debug
SPA2_PROFILES="$PK_WORK/spa2-profiles"
mkdir -p "$SPA2_PROFILES/pknock"
cat > "$SPA2_PROFILES/pknock/client.toml" <<PROFILE
[profile.lab-v2]
host = "192.0.2.1"
knock = [4500]
spa = "v2"
client_id = "laptop"
key_file = "$SPA2_KEYS/laptop"
rule = "V2"
PROFILE
expect closed "$NS_A" 192.0.2.1 2240 "2240 closed before the profile knock"
ip netns exec "$NS_A" env HOME=/nonexistent XDG_CONFIG_HOME="$SPA2_PROFILES" "$PKNOCK" knock lab-v2 \
    && pass "pknock knock lab-v2 (SPA v2 profile) exits 0" || fail "pknock knock lab-v2 failed"
expect open "$NS_A" 192.0.2.1 2240 "a v2 profile opens 2240"

scenario "SPA v2: unknown clients and other keys are refused"
write_config "$SPA2_RULES$SPA2_LAPTOP$SPA2_PHONE"
start_daemon --config "$CONFIG" --log-level debug
ip netns exec "$NS_A" "$PKNOCK" knock --spa2 --client-id stranger --key-file "$SPA2_KEYS/stranger" --rule V2 192.0.2.1 4500
expect closed "$NS_A" 192.0.2.1 2240 "a client not configured opens nothing"
spa2_log_has "unknown ?client.*stranger|stranger.*unknown ?client" "the log says unknown client stranger"
ip netns exec "$NS_A" "$PKNOCK" knock --spa2 --client-id laptop --key-file "$SPA2_KEYS/stranger" --rule V2 192.0.2.1 4500
expect closed "$NS_A" 192.0.2.1 2240 "a configured client id signed with another key opens nothing"
ip netns exec "$NS_A" "$PKNOCK" knock --spa2 --client-id phone --key-type hmac --key-file "$SPA2_KEYS/stranger" --rule V2 192.0.2.1 4500
expect closed "$NS_A" 192.0.2.1 2240 "an HMAC client with the wrong key opens nothing"
laptop "$NS_A" --rule V2 192.0.2.1 4500 --timestamp $(( $(date +%s) - 600 ))
expect closed "$NS_A" 192.0.2.1 2240 "a packet made ten minutes ago opens nothing"
stop_daemon

scenario "SPA v2: a captured packet opens once, not again, not after a restart"
write_config "$SPA2_RULES$SPA2_LAPTOP$SPA2_PHONE"
start_daemon --config "$CONFIG" --log-level debug
SPA2_CAPTURED=$(laptop "$NS_A" --rule V2 --dry-run 192.0.2.1 4500 | sed -n 's/^packet: //p')
[ -n "$SPA2_CAPTURED" ] && pass "--dry-run prints the packet" || fail "--dry-run printed no packet"
# An on-path attacker (B) sends the captured packet first: a packet naming no address opens its sender.
spa2_send "$NS_B" "$SPA2_CAPTURED" 198.51.100.1 4500
expect open "$NS_B" 198.51.100.1 2240 "the captured packet opens once (for whoever sends it first)"
spa2_send "$NS_A" "$SPA2_CAPTURED" 192.0.2.1 4500
expect closed "$NS_A" 192.0.2.1 2240 "the same packet again is refused"
spa2_log_has "replay" "the log says replayed"
stop_daemon
# No `scenario` here: the saved nonces in $PK_WORK/state must survive the restart.
start_daemon --config "$CONFIG" --log-level debug
spa2_send "$NS_A" "$SPA2_CAPTURED" 192.0.2.1 4500
expect closed "$NS_A" 192.0.2.1 2240 "the packet is still refused after a restart"
laptop "$NS_A" --rule V2 192.0.2.1 4500
expect open "$NS_A" 192.0.2.1 2240 "a fresh packet still opens after the restart"
stop_daemon

scenario "SPA v2: a client removed from the config and SIGHUP is refused"
write_config "$SPA2_RULES$SPA2_LAPTOP$SPA2_PHONE"
start_daemon --config "$CONFIG" --log-level debug
phone "$NS_B" --rule V2 198.51.100.1 4500
expect open "$NS_B" 198.51.100.1 2240 "phone opens before the revocation"
write_config "$SPA2_RULES$SPA2_LAPTOP"
kill -HUP "$DAEMON_PID"
sleep 1
phone "$NS_A" --rule V2 192.0.2.1 4500
expect closed "$NS_A" 192.0.2.1 2240 "phone's packets are refused after the reload"
laptop "$NS_A" --rule V2 192.0.2.1 4500
expect open "$NS_A" 192.0.2.1 2240 "laptop still opens after the reload"
stop_daemon

scenario "SPA v2: a named address only for a client and rule that allow it"
write_config "$SPA2_RULES$SPA2_LAPTOP$SPA2_PHONE"
start_daemon --config "$CONFIG" --log-level debug
phone "$NS_A" --rule V2 --address 198.51.100.2 192.0.2.1 4500
expect closed "$NS_B" 198.51.100.1 2240 "phone (may_name_address false) cannot open for another address"
expect closed "$NS_A" 192.0.2.1 2240 "nor for its own source"
laptop "$NS_A" --rule V2N --address 198.51.100.2 192.0.2.1 4501
expect closed "$NS_B" 198.51.100.1 2241 "laptop cannot name another address on V2N (allow_named_address false)"
laptop "$NS_A" --rule V2N --address 192.0.2.2 192.0.2.1 4501
expect open "$NS_A" 192.0.2.1 2241 "naming its own source address is fine on V2N"
laptop "$NS_A" --rule V2 --address 198.51.100.2 192.0.2.1 4500
expect open "$NS_B" 198.51.100.1 2240 "laptop on V2 opens the named address (B) from A"
expect closed "$NS_A" 192.0.2.1 2240 "and not its own source"
laptop "$NS_A" -6 --rule V2 --address 2001:db8:2::2 2001:db8:1::1 4500
expect open "$NS_B" 2001:db8:2::1 2240 "a named IPv6 address is opened"
stop_daemon

kill "$SPA2_SERVICE_PID" 2>/dev/null; wait "$SPA2_SERVICE_PID" 2>/dev/null
trap netns_down EXIT
write_config ""
