#!/bin/bash
# Checks the FirewallLayout goldens in this directory against the real kernel and nft CLI, each
# step in a private network namespace (unshare --net), and refreshes the captured listings:
#   *.ruleset             `nft list ruleset` after installing the golden of the same name
#   listing-*.json        `nft -j list …` outputs that FirewallLayoutTests parse
# Needs root, nft, ip and python3. Never touches the host's ruleset.
#
#   sudo Tests/KnockDaemonTests/testdata/validate-nft.sh
set -euo pipefail
cd "$(dirname "$0")"

fail() { echo "FAIL: $*" >&2; exit 1; }
# Runs a bash snippet in a fresh, empty network namespace.
# (`has SET TEXT`: whether `nft list set` shows TEXT; no `| grep -q`, which can SIGPIPE nft under pipefail.)
in_netns() {
    unshare --net -- bash -euo pipefail -c 'has() { local out; out=$(nft list set inet pknock "$1"); [[ "$out" == *"$2"* ]]; }
'"$1"
}

echo "== every golden checks, installs, and installs again over itself"
for golden in sequence strict spa shared drop; do
    in_netns "nft -c -f $golden.nft && nft -f $golden.nft && nft -f $golden.nft && nft list ruleset" > "$golden.ruleset" \
        || fail "$golden.nft"
    echo "ok $golden.nft"
done

echo "== reinstall keeps allowed elements, empties watch sets, deletes unused sets"
in_netns '
    nft -f strict.nft
    nft add element inet pknock SSH_allowed4 { 192.0.2.7 timeout 1h }
    nft add element inet pknock SSH_watch4 { 192.0.2.8 }
    nft add set inet pknock old_allowed4 { type ipv4_addr\; flags timeout\; }
    nft add set inet pknock old_watch6 { type ipv6_addr\; flags timeout\; }
    nft add rule inet pknock input ip saddr @old_allowed4 accept
    nft -f strict-reinstall.nft
    has SSH_allowed4 "192.0.2.7 timeout 1h" || { echo "allowed element lost"; exit 1; }
    ! has SSH_watch4 192.0.2.8 || { echo "watch set kept"; exit 1; }
    [[ "$(nft list sets table inet pknock)" != *old_* ]] || { echo "old sets kept"; exit 1; }
' || fail "reinstall"
echo "ok reinstall"

echo "== allow (re)sets the timeout, revoke of a missing element succeeds"
in_netns '
    nft -f spa.nft
    allow() { printf "add element inet pknock VPN_allowed4 { 192.0.2.7 }\ndelete element inet pknock VPN_allowed4 { 192.0.2.7 }\nadd element inet pknock VPN_allowed4 { 192.0.2.7%s }\n" "$1" | nft -f -; }
    revoke() { printf "add element inet pknock VPN_allowed4 { 192.0.2.7 }\ndelete element inet pknock VPN_allowed4 { 192.0.2.7 }\n" | nft -f -; }
    expires() { nft -j list set inet pknock VPN_allowed4 | python3 -c "import json,sys; s=[o[\"set\"] for o in json.load(sys.stdin)[\"nftables\"] if \"set\" in o][0]; e=s.get(\"elem\",[]); print(e[0][\"elem\"].get(\"expires\",\"none\") if e and isinstance(e[0],dict) else (\"none\" if e else \"absent\"))"; }
    allow " timeout 30s"; sleep 3
    [ "$(expires)" -le 27 ] || { echo "timeout did not run"; exit 1; }
    allow " timeout 30s"
    [ "$(expires)" -ge 29 ] || { echo "allow did not reset the timeout: $(expires)"; exit 1; }
    allow " timeout 3600s"
    [ "$(expires)" -ge 3599 ] || { echo "allow did not lengthen the timeout"; exit 1; }
    allow " timeout 10s"
    [ "$(expires)" -le 10 ] || { echo "allow did not shorten the timeout"; exit 1; }
    allow ""
    [ "$(expires)" = none ] || { echo "allow without ttl kept a timeout"; exit 1; }
    allow " timeout 2s"; sleep 3
    [ "$(expires)" = absent ] || { echo "element did not expire"; exit 1; }
    revoke
    [ "$(expires)" = absent ] || { echo "revoke of an expired element left it"; exit 1; }
    allow " timeout 30s"; revoke
    [ "$(expires)" = absent ] || { echo "revoke left the element"; exit 1; }
    ! nft delete element inet pknock VPN_allowed4 { 192.0.2.7 } 2>/dev/null || { echo "plain delete of a missing element succeeded"; exit 1; }
    nft -f commands.nft
    nft -f commands.nft
    has VPN_allowed4 "elements = { 192.0.2.7 }" || { echo "commands.nft"; exit 1; }
    ! has VPN_allowed6 2001:db8::7 || { echo "commands.nft revoke"; exit 1; }
    ! nft add element inet pknock VPN_allowed4 { 192.0.2.9 timeout 100000000s } 2>/dev/null || { echo "nft now takes longer timeouts"; exit 1; }
    nft add element inet pknock VPN_allowed4 { 192.0.2.9 timeout 99999999s }
' || fail "element commands"
echo "ok element commands"

echo "== packets: knocks are logged then answered as a closed port, the watch set fills, protected ports open with the set"
# Probes from this namespace to itself: TCP connect (refused on a reset, dropped on silence), and UDP
# through a connected socket (refused on ICMP port unreachable). lo is exempt from ICMP rate limits.
PROBE='
import socket, subprocess
def connect(port, timeout=1.0):
    s = socket.socket(); s.settimeout(timeout)
    try:
        s.connect(("192.0.2.1", port)); return "open"
    except socket.timeout: return "dropped"
    except ConnectionRefusedError: return "refused"
    finally: s.close()
def datagram(port, timeout=1.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(timeout)
    try:
        s.connect(("192.0.2.1", port)); s.send(b"probe"); s.recv(64); return "answered"
    except socket.timeout: return "dropped"
    except ConnectionRefusedError: return "refused"
    finally: s.close()
def nft(*args): return subprocess.run(["nft", *args], check=True, capture_output=True, text=True).stdout
def ack(port, timeout=0.5):
    """Sends a bare ACK segment (no connection) from a raw socket; "reset" if a RST comes back."""
    import random, struct, time
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP); raw.settimeout(0.05)
    sport = random.randint(40000, 60000)
    header = struct.pack("!HHIIBBHHH", sport, port, 1, 1, 5 << 4, 0x10, 1024, 0, 0)
    pseudo = socket.inet_aton("192.0.2.1") * 2 + struct.pack("!BBH", 0, 6, len(header))
    data = pseudo + header; total = sum((data[i] << 8) + data[i + 1] for i in range(0, len(data), 2))
    while total >> 16: total = (total & 0xFFFF) + (total >> 16)
    raw.sendto(header[:16] + struct.pack("!H", ~total & 0xFFFF) + header[18:], ("192.0.2.1", 0))
    deadline = time.time() + timeout
    while time.time() < deadline:
        try: packet = raw.recv(128)
        except socket.timeout: continue
        tcp = packet[(packet[0] & 15) * 4:]
        if struct.unpack("!HH", tcp[:4]) == (port, sport) and tcp[13] & 0x04: return "reset"
    return "silent"
'
in_netns '
    ip link set lo up
    ip addr add 192.0.2.1/32 dev lo
    nft -f strict.nft
    python3 - <<EOF
'"$PROBE"'
assert connect(7002) == "refused", "an unused port refuses"
assert connect(7000) == "refused", "a knock port must answer as a closed port (reset)"
assert ack(7002) == "reset" and ack(7000) == "reset", "a non-SYN segment to a knock port gets the reset a closed port sends"
assert "192.0.2.1" in nft("list", "set", "inet", "pknock", "SSH_watch4"), "strict knock did not fill the watch set before the reset"
assert "192.0.2.1" not in nft("list", "set", "inet", "pknock", "web_watch6")
assert datagram(8001) == "refused", "an unused UDP port answers port unreachable"
assert datagram(8000) == "refused", "a UDP knock port must answer port unreachable"
server = socket.socket(); server.bind(("192.0.2.1", 22)); server.listen()
assert connect(22) == "refused", "a protected port must answer unknown peers as a closed port"
nft("add", "element", "inet", "pknock", "SSH_allowed4", "{ 192.0.2.1 timeout 60s }")
assert connect(22) == "open", "allowed peer must pass"
assert connect(23) == "refused", "other ports are not ours"
print("packet checks passed")
EOF
' || fail "packets"
in_netns '
    ip link set lo up
    ip addr add 192.0.2.1/32 dev lo
    nft -f drop.nft
    python3 - <<EOF
'"$PROBE"'
assert connect(2001, 0.5) == "dropped", "closed_port_response = drop: a knock port is silent"
assert ack(2001) == "silent", "closed_port_response = drop: a non-SYN to a knock port is silent"
assert datagram(4000, 0.5) == "dropped", "closed_port_response = drop: a UDP knock port is silent"
server = socket.socket(); server.bind(("192.0.2.1", 22)); server.listen()
assert connect(22, 0.5) == "dropped", "closed_port_response = drop: a protected port is silent"
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("192.0.2.1", 53))
assert datagram(53, 0.5) == "dropped", "closed_port_response = drop: a protected UDP port is silent"
nft("add", "element", "inet", "pknock", "SSH_allowed4", "{ 192.0.2.1 timeout 60s }")
assert connect(22) == "open", "allowed peer must pass"
print("drop packet checks passed")
EOF
' || fail "drop packets"
echo "ok packets"

echo "== capture JSON listings"
in_netns '
    nft -f spa.nft
    nft -f shared.nft
    nft add element inet pknock VPN_allowed4 { 192.0.2.7 timeout 3600s, 198.51.100.20 }
    nft add element inet pknock VPN_allowed6 { 2001:db8::7 timeout 1800s, 2001:db8:1::42 }
    nft add element inet pknock ops-team_allowed4 { 203.0.113.5 timeout 60s }
    nft add element inet pknock _2fa_watch4 { 203.0.113.9 }
    nft -j list sets table inet pknock > listing-sets.json
    nft -j list set inet pknock VPN_allowed4 > listing-VPN_allowed4.json
    nft -j list set inet pknock VPN_allowed6 > listing-VPN_allowed6.json
    nft -j list set inet pknock legacy_allowed4 > listing-empty-set.json
'
echo "ok listings"
echo "all nft checks passed"
