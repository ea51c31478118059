# pknockd as a service (issue #6): control socket, status, events, open/close, hooks
# (sourced by Scripts/netns-e2e.sh; run alone with `Scripts/netns-e2e.sh BIN_DIR 40-service`).

SOCK="$PK_WORK/run/control.sock"
HOOKLOG="$PK_WORK/hooks.log"
: > "$HOOKLOG"
# Hooks on rule SHORT (3000:udp, autoclose 2 s): write_config appends these keys to it.
write_config "on_open = \"echo open \$PKNOCK_RULE \$PKNOCK_PEER \$PKNOCK_PROTO \$PKNOCK_PORT \$PKNOCK_EVENT %IP% >> $HOOKLOG\"
on_close = \"echo close \$PKNOCK_RULE \$PKNOCK_PEER \$PKNOCK_EVENT >> $HOOKLOG; exit 3\""

ctl() { "$PKNOCK" "$@" --control-socket "$SOCK"; }
# wait_for FILE TEXT WHAT: FILE comes to contain TEXT within 4 s.
wait_for() {
    local deadline=$((SECONDS + 4))
    while [ $SECONDS -lt $deadline ]; do
        grep -qF -- "$2" "$1" 2>/dev/null && { pass "$3"; return; }
        sleep 0.1
    done
    fail "$3 ('$2' not in $(basename "$1"): $(tr '\n' '|' < "$1" 2>/dev/null))"
}

scenario "control socket: permissions, status, events, open, close"
start_daemon --config "$CONFIG" --control-socket "$SOCK" --log-level debug
[ "$(stat -c %a "$SOCK")" = 600 ] && pass "the socket is mode 0600" || fail "socket mode $(stat -c %a "$SOCK")"
[ "$(stat -c %a "$(dirname "$SOCK")")" = 700 ] && pass "its directory is mode 0700" || fail "directory mode wrong"

ctl events > "$PK_WORK/events.txt" 2>&1 &
EVENTS_PID=$!
ctl events --json > "$PK_WORK/events.json" 2>&1 &
EVENTS_JSON_PID=$!
sleep 0.3

knock "$NS_A" 192.0.2.1 2002 2001
ctl status SSH > "$PK_WORK/status.txt"
grep -q "^src=192.0.2.2 proto=TCP status=MATCHING accepted_knock_count=2 expir_time=[0-9]* next_port_id=2 next_port=2004:tcp$" "$PK_WORK/status.txt" \
    && pass "status shows A matching, next port 2004" || fail "status after two knocks: $(cat "$PK_WORK/status.txt")"
knock "$NS_A" 192.0.2.1 2004
expect open "$NS_A" 192.0.2.1 22 "A reaches 22 after the sequence"
ctl status > "$PK_WORK/status.txt"
grep -q "^src=192.0.2.2 proto=TCP status=ALLOWED accepted_knock_count=3 autoclose_time=" "$PK_WORK/status.txt" \
    && pass "status shows A allowed with its autoclose time" || fail "status after the sequence: $(cat "$PK_WORK/status.txt")"
ctl status --json | python3 -c '
import json, sys
reply = json.load(sys.stdin)
peers = [p for r in reply["rules"] if r["rule"] == "SSH" for p in r["peers"]]
sys.exit(0 if reply["ok"] and peers and peers[0]["status"] == "allowed" and peers[0]["peer"] == "192.0.2.2" else 1)' \
    && pass "status --json is well-formed and agrees" || fail "status --json"

ctl close SSH 192.0.2.2 >/dev/null && pass "pknock close succeeds" || fail "pknock close failed"
expect closed "$NS_A" 192.0.2.1 22 "A is closed out after pknock close"
ctl open SSH 198.51.100.2 --for 30s >/dev/null && pass "pknock open succeeds" || fail "pknock open failed"
expect open "$NS_B" 198.51.100.1 22 "B reaches 22 after pknock open, without knocking"
ctl open NOPE 198.51.100.2 2>/dev/null && fail "open of an unknown rule succeeded" || pass "open of an unknown rule fails"

wait_for "$PK_WORK/events.txt" "SSH src=192.0.2.2 proto=TCP port=2002 event=MATCHING step=1/3" "events: matching"
wait_for "$PK_WORK/events.txt" "SSH src=192.0.2.2 proto=TCP port=2004 event=ALLOWED autoclose_time=3600" "events: allowed"
wait_for "$PK_WORK/events.txt" "SSH src=192.0.2.2 event=CLOSED" "events: closed by the administrator"
wait_for "$PK_WORK/events.txt" "SSH src=198.51.100.2 event=ALLOWED autoclose_time=30" "events: administrator open"
wait_for "$PK_WORK/events.json" '"event":"allowed"' "a second reader gets JSON events at the same time"

# Garbage on the socket gets an error reply and hurts nothing.
s python3 - "$SOCK" > "$PK_WORK/garbage.txt" <<'PY'
import socket, sys
c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); c.settimeout(5)
c.sendall(b"garbage\n\xff\xfe\n{\"command\":\"format c:\"}\n")
data = b""
while data.count(b"\n") < 3: data += c.recv(4096)
print(data.decode(errors="replace"))
c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); c.settimeout(5)
try:
    c.sendall(b"x" * 1000000)   # the daemon replies and hangs up long before the end
except (BrokenPipeError, ConnectionResetError):
    pass
print(c.recv(4096).decode())
PY
[ "$(grep -c '"ok":false' "$PK_WORK/garbage.txt")" = 4 ] && pass "garbage gets four error replies" || fail "garbage replies: $(cat "$PK_WORK/garbage.txt")"
ctl status SSH >/dev/null && pass "the daemon still answers after garbage" || fail "no answer after garbage"
expect open "$NS_B" 198.51.100.1 22 "and still enforces its grants"

scenario "hooks: on_open and on_close with environment, a failing hook is not fatal"
: > "$HOOKLOG"
start_daemon --config "$CONFIG" --control-socket "$SOCK" --log-level debug
knock "$NS_A" 192.0.2.1 3000:udp
wait_for "$HOOKLOG" "open SHORT 192.0.2.2 udp 3000 allowed 192.0.2.2" "on_open ran with PKNOCK_* and %IP%"
wait_for "$HOOKLOG" "close SHORT 192.0.2.2 autoclosed" "on_close ran at autoclose"
expect_log "hook failed" "the failing on_close is logged"
ctl status SHORT >/dev/null && pass "the daemon carries on after a failing hook" || fail "daemon gone after a failing hook"
ctl open SHORT 198.51.100.2 --for 1m >/dev/null
wait_for "$HOOKLOG" "open SHORT 198.51.100.2 udp allowed 198.51.100.2" "pknock open runs on_open too"

kill "$EVENTS_PID" "$EVENTS_JSON_PID" 2>/dev/null
wait "$EVENTS_PID" "$EVENTS_JSON_PID" 2>/dev/null
stop_daemon
[ ! -e "$SOCK" ] && pass "the socket is removed on stop" || fail "the socket is left behind"
write_config ""
