# pknockd on the real kernel: the scenarios of issue #3 (sourced by Scripts/netns-e2e.sh).

scenario "a port sequence opens the protected port for the knocking peer only"
start_daemon --config "$CONFIG" --log-level debug
expect closed "$NS_A" 192.0.2.1 22 "A cannot reach 22 before knocking"
expect closed "$NS_B" 198.51.100.1 22 "B cannot reach 22 before knocking"
knock "$NS_A" 192.0.2.1 2002 2001 2004
expect open "$NS_A" 192.0.2.1 22 "A reaches 22 after 2002,2001,2004"
expect closed "$NS_B" 198.51.100.1 22 "B still cannot reach 22"
expect closed "$NS_A" 192.0.2.1 21 "A's grant covers only the rule's port"
expect_log "peer allowed" "the grant is logged"
stop_daemon

scenario "wrong order and strict reset"
start_daemon --config "$CONFIG" --log-level debug
knock "$NS_A" 192.0.2.1 2001 2002 2004
expect closed "$NS_A" 192.0.2.1 22 "wrong order (2001,2002,2004) does not open"
knock "$NS_A" 192.0.2.1 2002 2004 2001 2004
expect closed "$NS_A" 192.0.2.1 22 "a wrong knock mid-sequence resets a strict rule"
knock "$NS_A" 192.0.2.1 2002
can_reach "$NS_A" 192.0.2.1 8080 >/dev/null
knock "$NS_A" 192.0.2.1 2001 2004
expect closed "$NS_A" 192.0.2.1 22 "a connection elsewhere mid-sequence counts as a wrong knock (strict)"
knock "$NS_A" 192.0.2.1 2002 2001 2004
expect open "$NS_A" 192.0.2.1 22 "the full sequence afterwards opens"
stop_daemon

scenario "time between knocks exceeded"
start_daemon --config "$CONFIG" --log-level debug
knock "$NS_A" 192.0.2.1 2002 2001
sleep 3.5
knock "$NS_A" 192.0.2.1 2004
expect closed "$NS_A" 192.0.2.1 22 "a 3.5 s pause with time = 3 s does not open"
expect_log "time between knocks exceeded" "time exceeded is logged"
stop_daemon

scenario "SPA: open, refusals, close knock to any port"
start_daemon --config "$CONFIG" --log-level debug
knock "$NS_A" 192.0.2.1 4000 --spa --secret-file "$PK_WORK/secrets/wrong"
expect closed "$NS_A" 192.0.2.1 21 "a wrong secret does not open"
knock "$NS_A" 192.0.2.1 4000 --spa --secret-file "$PK_WORK/secrets/ftp.open" --source-ip 192.0.2.99
expect closed "$NS_A" 192.0.2.1 21 "a MAC for another address does not open"
knock "$NS_A" 192.0.2.1 4000:udp --udp
expect closed "$NS_A" 192.0.2.1 21 "a knock without payload does not open"
# The next two knocks must fall in one minute (a new minute would open again, rightly).
within_one_minute 20
knock "$NS_A" 192.0.2.1 4000 --spa --secret-file "$PK_WORK/secrets/ftp.open"
expect open "$NS_A" 192.0.2.1 21 "the right secret opens 21"
expect closed "$NS_B" 198.51.100.1 21 "B still cannot reach 21"
knock "$NS_A" 192.0.2.1 4000 --spa --secret-file "$PK_WORK/secrets/ftp.open"
expect_log "SPA minute already used" "a second open in the same minute is blocked"
knock "$NS_A" 192.0.2.1 9999 --spa --secret-file "$PK_WORK/secrets/ftp.close"
expect closed "$NS_A" 192.0.2.1 21 "a close knock to another UDP port revokes access"
expect_log "peer closed access" "the close is logged"
stop_daemon

scenario "the original's two-rule --checkip form from a rules file"
cat > "$PK_WORK/xt.rules" <<'RULES'
# the original's two-rule SPA setup
iptables -A INPUT -p udp -m state --state NEW -m pknock --knockports 4000 --name FTP --opensecret open-sesame-4000 --closesecret close-sesame-4000 -j DROP
iptables -A INPUT -p tcp -m state --state NEW -m pknock --checkip --name FTP -m tcp --dport 21 -j ACCEPT
# the one-rule form
iptables -A INPUT -p tcp -m state --state NEW -m pknock --knockports 2002,2001 --name SSH --time 10 -m tcp --dport 22 -j ACCEPT
RULES
start_daemon --rules-file "$PK_WORK/xt.rules" --table pknock_xt --nflog-group 18 --log-level debug \
    --control-socket "$PK_WORK/control-xt.sock" --state-directory "$PK_WORK/state-xt"
expect closed "$NS_A" 192.0.2.1 21 "21 closed before the SPA knock"
knock "$NS_A" 192.0.2.1 4000 --spa --secret-file "$PK_WORK/secrets/ftp.open"
expect open "$NS_A" 192.0.2.1 21 "--checkip rule FTP lets the SPA peer reach 21"
knock "$NS_A" 192.0.2.1 2002 2001
expect open "$NS_A" 192.0.2.1 22 "one-rule form SSH opens 22"
stop_daemon TERM
s "$PKNOCKD" --rules-file "$PK_WORK/xt.rules" --table pknock_xt --teardown >/dev/null \
    && pass "--teardown with --table removes that table" || fail "--teardown --table failed"

scenario "autoclose"
start_daemon --config "$CONFIG" --log-level debug
knock "$NS_A" 192.0.2.1 3000:udp
expect open "$NS_A" 192.0.2.1 2222 "open right after the knock"
sleep 2.5
expect closed "$NS_A" 192.0.2.1 2222 "closed once autoclose (2 s) has passed"
expect_log "access expired" "the expiry is logged"
stop_daemon

scenario "IPv6"
start_daemon --config "$CONFIG" --log-level debug
expect closed "$NS_A" 2001:db8:1::1 22 "22 closed over IPv6 before knocking"
knock "$NS_A" 2001:db8:1::1 2002 2001 2004
expect open "$NS_A" 2001:db8:1::1 22 "an IPv6 sequence opens 22 over IPv6"
expect closed "$NS_B" 2001:db8:2::1 22 "B still closed over IPv6"
knock "$NS_B" 2001:db8:2::1 4000 --spa --secret-file "$PK_WORK/secrets/ftp.open"
expect open "$NS_B" 2001:db8:2::1 21 "SPA from an IPv6 source (16-byte address in the MAC) opens 21"
stop_daemon

scenario "kill -9 keeps allowed peers in and everyone else out; a restart carries on"
start_daemon --config "$CONFIG" --log-level debug
knock "$NS_A" 192.0.2.1 2002 2001 2004
expect open "$NS_A" 192.0.2.1 22 "A allowed before the crash"
stop_daemon KILL
expect open "$NS_A" 192.0.2.1 22 "A keeps access while pknockd is dead"
expect closed "$NS_B" 198.51.100.1 22 "B locked out while pknockd is dead"
knock "$NS_B" 198.51.100.1 2002 2001 2004
expect closed "$NS_B" 198.51.100.1 22 "knocks while pknockd is dead open nothing (fail closed)"
start_daemon --config "$CONFIG" --log-level debug
expect_log "peers.adopted=1" "the restarted pknockd adopts the allowed peer"
expect open "$NS_A" 192.0.2.1 22 "A still allowed after the restart"
knock "$NS_B" 198.51.100.1 2002 2001 2004
expect open "$NS_B" 198.51.100.1 22 "B gets in after the restart"
stop_daemon

scenario "SIGHUP: a broken config changes nothing; a good one applies; sessions survive"
start_daemon --config "$CONFIG" --log-level debug
knock "$NS_A" 192.0.2.1 2002 2001 2004
rm -f "$PK_WORK/go" "$PK_WORK/done"
a python3 Scripts/lib/tcp.py session 192.0.2.1 22 "$PK_WORK/go" "$PK_WORK/done" &
SESSION_PID=$!
sleep 0.3
RULES_BEFORE=$(s nft list table inet pknock_e2e | grep -v expires)
cp "$CONFIG" "$CONFIG.good"
printf '[[rule]]\nname = "BROKEN"\nknock = [0]\n' >> "$CONFIG"
kill -HUP "$DAEMON_PID"
expect_log "reload refused" "a broken config is refused on reload"
RULES_AFTER=$(s nft list table inet pknock_e2e | grep -v expires)
[ "$RULES_BEFORE" = "$RULES_AFTER" ] && pass "the table is unchanged" || fail "the table changed after a refused reload"
knock "$NS_B" 198.51.100.1 2002 2001 2004
expect open "$NS_B" 198.51.100.1 22 "the old rules keep running"
write_config '
[[rule]]
name = "WEB"
knock = [5001, 5002]
protect = [8080]'
kill -HUP "$DAEMON_PID"
expect_log "configuration reloaded" "a good config is applied"
expect open "$NS_A" 192.0.2.1 22 "A keeps its access across the reload"
knock "$NS_A" 192.0.2.1 5001 5002
expect open "$NS_A" 192.0.2.1 8080 "the new rule WEB works"
touch "$PK_WORK/go"
wait "$SESSION_PID" && pass "an established connection survives the reloads" || fail "the established connection broke"
stop_daemon

scenario "SIGHUP: a 100,000-deep TOML file is refused; the daemon keeps running (#11)"
write_config ""
start_daemon --config "$CONFIG" --log-level debug
python3 -c 'print("x = " + "[" * 100000 + "]" * 100000)' >> "$CONFIG"
kill -HUP "$DAEMON_PID"
expect_log "nested too deeply" "the reload is refused with the parser's file:line message"
expect_log "reload refused" "the refusal is logged as a refused reload"
kill -0 "$DAEMON_PID" 2>/dev/null && pass "pknockd still runs after the hostile reload" || fail "pknockd died on the hostile reload"
knock "$NS_A" 192.0.2.1 2002 2001 2004
expect open "$NS_A" 192.0.2.1 22 "a knock still opens with the old rules"
python3 -c 'print("# padding\n" * 110000, end="")' >> "$CONFIG"
kill -HUP "$DAEMON_PID"
expect_log "larger than the limit of 1 MiB" "a file over 1 MiB is refused on reload"
kill -0 "$DAEMON_PID" 2>/dev/null && pass "pknockd still runs after the oversized reload" || fail "pknockd died on the oversized reload"
stop_daemon
write_config ""

scenario "SIGTERM leaves the table (fail closed); --remove-on-exit and --teardown remove it"
start_daemon --config "$CONFIG"
stop_daemon TERM
s nft list table inet pknock_e2e >/dev/null 2>&1 && pass "table kept after SIGTERM" || fail "table gone after SIGTERM"
s "$PKNOCKD" --config "$CONFIG" --teardown >/dev/null
s nft list table inet pknock_e2e >/dev/null 2>&1 && fail "table still there after --teardown" || pass "--teardown removes the table"
start_daemon --config "$CONFIG" --remove-on-exit
stop_daemon INT
s nft list table inet pknock_e2e >/dev/null 2>&1 && fail "table kept with --remove-on-exit" || pass "--remove-on-exit removes the table on SIGINT"

scenario "clear errors"
out=$(s "$PKNOCKD" --config "$PK_WORK/missing.toml" 2>&1); rc=$?
[ $rc = 2 ] && pass "missing config: exit 2" || fail "missing config: exit $rc"
start_daemon --config "$CONFIG"
out=$(s "$PKNOCKD" --config "$CONFIG" --table pknock_other 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "NFLOG group 17" && pass "NFLOG group taken: exit 2 with a message" || fail "NFLOG group taken: exit $rc: $out"
stop_daemon
PUBLIC_CONFIG=$(mktemp /tmp/pknock-public.XXXXXX.toml)
printf '[[rule]]\nname = "SSH"\nknock = [2002, 2001]\nprotect = [22]\n' > "$PUBLIC_CONFIG"
chmod 644 "$PUBLIC_CONFIG"
out=$(s setpriv --reuid=65534 --regid=65534 --clear-groups "$PKNOCKD" --config "$PUBLIC_CONFIG" 2>&1); rc=$?
rm -f "$PUBLIC_CONFIG"
[ $rc = 2 ] && echo "$out" | grep -qi "permi" && pass "unprivileged: exit 2 ($(echo "$out" | tail -1 | cut -c1-80))" || fail "unprivileged: exit $rc: $out"

# Later scenario files start from the shared configuration again.
write_config ""
