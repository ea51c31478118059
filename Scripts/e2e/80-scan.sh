# A port scan cannot tell knock ports and protected ports from unused ones (issue #11, item 3;
# sourced by Scripts/netns-e2e.sh).
#
# Probes from client A: TCP connect (ECONNREFUSED on a reset, a timeout on silence) and UDP through
# a connected socket (ECONNREFUSED once an ICMP port unreachable came back). Port 9999 is unused;
# 2002 (TCP) and 4000 (UDP) are knock ports; 22 (TCP, echo service listening) and 5353 (UDP, echo
# service listening) are protected ports no one has opened yet.

SCAN_RULE='
[[rule]]
name = "DNS"
knock = ["3100:udp"]
autoclose = 60
protect = ["5353:udp"]'

# same_answer WANT FAMILY_HOST WHAT: the unused, knock and protected ports, TCP and UDP, all answer WANT.
same_answer() {
    local want=$1 host=$2 what=$3 port answers
    for transport in tcp udp; do
        answers=""
        if [ "$transport" = tcp ]; then ports="9999 2002 22"; else ports="9999 4000 5353"; fi
        for port in $ports; do answers+="$port=$(answer "$NS_A" "$transport" "$host" "$port") "; done
        if [ "$answers" = "$(for port in $ports; do printf '%s=%s ' "$port" "$want"; done)" ]; then
            pass "$what: $transport unused, knock and protected ports all $want ($host)"
        else
            fail "$what: $transport ports differ ($host): $answers"
        fi
    done
}

# knocks_still_open HOST WHAT: the SSH sequence opens 22 and the DNS knock opens 5353/udp.
knocks_still_open() {
    knock "$NS_A" "$1" 2002 2001 2004
    expect open "$NS_A" "$1" 22 "$2: the sequence still opens 22 ($1)"
    knock "$NS_A" "$1" 3100:udp
    local got=""
    for _ in 1 2 3 4; do got=$(answer "$NS_A" udp "$1" 5353); [ "$got" = open ] && break; done
    [ "$got" = open ] && pass "$2: the UDP knock still opens 5353/udp ($1)" || fail "$2: 5353/udp after the knock: $got ($1)"
}

start_udp_service 5353
write_config "$SCAN_RULE"

scenario "a scan sees knock ports and protected ports as closed ports (reset, port unreachable)"
start_daemon --config "$CONFIG" --log-level debug
same_answer refused 192.0.2.1 "default"
same_answer refused 2001:db8:1::1 "default"
expect_log "knock matched" "the probe of knock port 2002 was still logged as a knock"
knocks_still_open 192.0.2.1 "default"
knocks_still_open 2001:db8:1::1 "default"
stop_daemon

scenario "the ICMP of a knock or protected port is rate-limited as the kernel limits a closed port's"
# Per-peer ICMP rate limit 100 ms (burst of 6) in the server namespace, so a burst shows it quickly.
s sysctl -qw net.ipv4.icmp_ratelimit=100 net.ipv6.icmp.ratelimit=100
start_daemon --config "$CONFIG"
for host in 192.0.2.1 2001:db8:1::1; do
    counts=""
    for port in 9999 4000 5353; do
        sleep 1  # refill the bucket
        counts+="$(a python3 "$PK_SCRIPTS/lib/tcp.py" unreachables "$host" "$port" 40) "
    done
    read -r unused knockport protected <<<"$counts"
    echo "    port unreachables for 40 datagrams ($host): unused $unused, knock port $knockport, protected $protected"
    if [ "$unused" -gt 0 ] && [ "$unused" -lt 40 ] && [ $((knockport - unused)) -le 2 ] && [ $((unused - knockport)) -le 2 ] \
        && [ $((protected - unused)) -le 2 ] && [ $((unused - protected)) -le 2 ]; then
        pass "the same rate limit answers the unused, knock and protected ports ($host: $counts)"
    else
        fail "ICMP counts differ or are not limited ($host: $counts)"
    fi
done
s sysctl -qw net.ipv4.icmp_ratelimit=1000 net.ipv6.icmp.ratelimit=1000
stop_daemon

scenario "closed_port_response = \"drop\": on a host that drops closed ports, every probe is silent"
sed -i 's/^\[daemon\]$/[daemon]\nclosed_port_response = "drop"/' "$CONFIG"
start_daemon --config "$CONFIG" --log-level debug
# The host's own firewall drops its closed port 9999 (a table of its own, like a policy-drop firewall).
s nft -f - <<'NFT'
table inet hostfw {
    chain input { type filter hook input priority 0; policy accept; tcp dport 9999 drop; udp dport 9999 drop; }
}
NFT
same_answer silent 192.0.2.1 "drop"
same_answer silent 2001:db8:1::1 "drop"
knocks_still_open 192.0.2.1 "drop"
knocks_still_open 2001:db8:1::1 "drop"
stop_daemon

write_config ""
stop_udp_service
