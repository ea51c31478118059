# pknock knock against pknockd on the real kernel: the scenarios of issue #4 (sourced by
# Scripts/netns-e2e.sh). Our client's sequences (TCP, UDP, mixed, IPv6) and SPA (sha256 and md5,
# open and close), knockd's own `knock` client, profiles, and --wait.
#
# Rules of their own (names C*), so that SPA replay memory from other scenarios in the same minute
# cannot block these opens; each protects its own port, served by a listener started here.

CLIENT_RULES='
[[rule]]
name = "CUDP"
knock = ["5001:udp", "5002:udp", "5003:udp"]
time = 5
protect = [2231]

[[rule]]
name = "CMIX"
knock = ["6001:tcp", "6002:udp", "6003:tcp"]
time = 5
protect = [2232]

[[rule]]
name = "CSHA"
knock = ["4200:udp"]
open_secret_file = "secrets/csha.open"
close_secret_file = "secrets/csha.close"
protect = [2233]

[[rule]]
name = "CMD5"
knock = ["4100:udp"]
spa = "md5"
open_secret_file = "secrets/cmd5.open"
close_secret_file = "secrets/cmd5.close"
protect = [2234]

[[rule]]
name = "CPROF"
knock = ["4300:udp"]
open_secret_file = "secrets/cprof.open"
close_secret_file = "secrets/cprof.close"
protect = [2235]'

( umask 077
  for name in csha cmd5 cprof; do
      printf '%s-open-secret\n' "$name" > "$PK_WORK/secrets/$name.open"
      printf '%s-close-secret\n' "$name" > "$PK_WORK/secrets/$name.close"
  done )
write_config "$CLIENT_RULES"

ip netns exec "$NS_S" python3 "$PK_SCRIPTS/lib/tcp.py" serve 2231 2232 2233 2234 2235 &
CLIENT_SERVICE_PID=$!
trap 'kill "$CLIENT_SERVICE_PID" 2>/dev/null; netns_down' EXIT
sleep 0.3

# pk NS ARGS...: our client without the helper's --delay (the default delay is what users get).
pk() { local ns=$1; shift; ip netns exec "$ns" "$PKNOCK" knock "$@"; }
# expect_status CODE WHAT CMD...: the command's exit status is CODE.
expect_status() {
    local want=$1 what=$2; shift 2
    "$@" >"$PK_WORK/client.out" 2>&1
    local got=$?
    [ "$got" = "$want" ] && pass "$what" || fail "$what (exit $got, wanted $want: $(tr '\n' ' ' <"$PK_WORK/client.out"))"
}
# expect_output TEXT WHAT: the last expect_status command printed TEXT.
expect_output() {
    grep -qF -- "$1" "$PK_WORK/client.out" && pass "$2" || fail "$2 (output: $(tr '\n' ' ' <"$PK_WORK/client.out"))"
}

scenario "pknock knock: TCP, UDP, mixed and IPv6 sequences open pknockd"
start_daemon --config "$CONFIG" --log-level debug
expect closed "$NS_A" 192.0.2.1 2231 "2231 closed before the UDP sequence"
pk "$NS_A" --udp 192.0.2.1 5001 5002 5003
expect open "$NS_A" 192.0.2.1 2231 "a UDP sequence (--udp) opens 2231"
expect closed "$NS_A" 192.0.2.1 2232 "2232 closed before the mixed sequence"
pk "$NS_A" 192.0.2.1 6001 6002:udp 6003:tcp
expect open "$NS_A" 192.0.2.1 2232 "a mixed TCP/UDP sequence opens 2232"
expect closed "$NS_B" 198.51.100.1 2232 "B still cannot reach 2232"
pk "$NS_A" 192.0.2.1 2002 2001 2004
expect open "$NS_A" 192.0.2.1 22 "a TCP sequence with the default delay opens 22"
expect closed "$NS_B" 2001:db8:2::1 2232 "B closed over IPv6 before knocking"
pk "$NS_B" -6 2001:db8:2::1 6001 6002:udp 6003
expect open "$NS_B" 2001:db8:2::1 2232 "a mixed sequence over IPv6 opens 2232 over IPv6"
pk "$NS_B" 2001:db8:2::1 5001:udp 5002:udp 5003:udp --delay 0
expect open "$NS_B" 2001:db8:2::1 2231 "a UDP sequence over IPv6 with --delay 0 opens 2231"
expect_status 1 "-4 with an IPv6 literal: exit 1" pk "$NS_A" -4 2001:db8:1::1 2002
stop_daemon

scenario "pknock knock --spa: sha256 and md5, open and close"
start_daemon --config "$CONFIG" --log-level debug
pk "$NS_A" --spa --secret-file "$PK_WORK/secrets/csha.open" 192.0.2.1 4200
expect open "$NS_A" 192.0.2.1 2233 "a sha256 SPA open opens 2233"
expect closed "$NS_B" 198.51.100.1 2233 "B still cannot reach 2233"
pk "$NS_A" --spa --close --secret-file "$PK_WORK/secrets/csha.close" 192.0.2.1 4200
expect closed "$NS_A" 192.0.2.1 2233 "a sha256 SPA close closes 2233"
pk "$NS_B" --spa --secret-file "$PK_WORK/secrets/cmd5.open" 198.51.100.1 4100
expect closed "$NS_B" 198.51.100.1 2234 "a sha256 packet does not open an md5 rule"
pk "$NS_A" --spa --format md5 --secret-file "$PK_WORK/secrets/cmd5.open" 192.0.2.1 4100
expect open "$NS_A" 192.0.2.1 2234 "an md5 SPA open opens 2234"
pk "$NS_A" --spa --format md5 --close --secret-file "$PK_WORK/secrets/cmd5.close" 192.0.2.1 4100
expect closed "$NS_A" 192.0.2.1 2234 "an md5 SPA close closes 2234"
pk "$NS_B" -6 --spa --format md5 --secret-file "$PK_WORK/secrets/cmd5.open" 2001:db8:2::1 4100:udp
expect open "$NS_B" 2001:db8:2::1 2234 "an md5 SPA open from IPv6 opens 2234 over IPv6"
expect_status 0 "PKNOCK_SECRET is used" \
    ip netns exec "$NS_B" env PKNOCK_SECRET=csha-open-secret "$PKNOCK" knock --spa 198.51.100.1 4200
expect open "$NS_B" 198.51.100.1 2233 "an SPA open with the secret from PKNOCK_SECRET opens 2233"
chmod 0644 "$PK_WORK/secrets/cprof.open"
expect_status 1 "a world-readable secret file is refused (exit 1)" pk "$NS_A" --spa --secret-file "$PK_WORK/secrets/cprof.open" 192.0.2.1 4300
expect_output "chmod 600" "the refusal says how to fix it"
chmod 0600 "$PK_WORK/secrets/cprof.open"
expect closed "$NS_A" 192.0.2.1 2235 "nothing was sent with the refused secret"
stop_daemon

scenario "knockd's knock client opens pknockd sequence rules"
start_daemon --config "$CONFIG" --log-level debug
expect closed "$NS_A" 192.0.2.1 22 "22 closed before knocking"
a knock 192.0.2.1 2002 2001 2004
expect open "$NS_A" 192.0.2.1 22 "knock 192.0.2.1 2002 2001 2004 opens 22"
b knock -u 198.51.100.1 5001 5002 5003
expect open "$NS_B" 198.51.100.1 2231 "knock -u opens a UDP sequence rule"
b knock 198.51.100.1 6001:tcp 6002:udp 6003:tcp
expect open "$NS_B" 198.51.100.1 2232 "knock with PORT:PROTO opens a mixed rule"
b knock -6 2001:db8:2::1 2002 2001 2004
expect open "$NS_B" 2001:db8:2::1 22 "knock -6 opens 22 over IPv6"
stop_daemon

scenario "profiles in ~/.config/pknock/client.toml and \$XDG_CONFIG_HOME"
start_daemon --config "$CONFIG" --log-level debug
CLIENT_HOME="$PK_WORK/home"
CLIENT_XDG="$PK_WORK/xdg"
mkdir -p "$CLIENT_HOME/.config/pknock" "$CLIENT_XDG/pknock"
cat > "$CLIENT_HOME/.config/pknock/client.toml" <<'TOML'
[profile.lab-ssh]
host = "192.0.2.1"
knock = [2002, 2001, 2004]
wait = "22:3"
TOML
cat > "$CLIENT_XDG/pknock/client.toml" <<'TOML'
[profile.lab-ftp]
host = "198.51.100.1"
knock = [4300]
open_secret_file = "cprof.open"      # next to this file
close_secret_file = "cprof.close"
TOML
( umask 077; cp "$PK_WORK/secrets/cprof.open" "$PK_WORK/secrets/cprof.close" "$CLIENT_XDG/pknock/" )
expect_status 0 "pknock knock lab-ssh (HOME profile with wait) exits 0" \
    ip netns exec "$NS_A" env HOME="$CLIENT_HOME" "$PKNOCK" knock lab-ssh
expect_output "192.0.2.1 port 22: open" "the profile's wait reports open"
expect open "$NS_A" 192.0.2.1 22 "the HOME profile opened 22"
expect_status 0 "pknock knock lab-ftp (XDG_CONFIG_HOME profile, SPA) exits 0" \
    ip netns exec "$NS_B" env HOME=/nonexistent XDG_CONFIG_HOME="$CLIENT_XDG" "$PKNOCK" knock lab-ftp
expect open "$NS_B" 198.51.100.1 2235 "the SPA profile opened 2235"
expect_status 0 "pknock knock --close lab-ftp uses the profile's close secret" \
    ip netns exec "$NS_B" env HOME=/nonexistent XDG_CONFIG_HOME="$CLIENT_XDG" "$PKNOCK" knock --close lab-ftp
expect closed "$NS_B" 198.51.100.1 2235 "the profile's close knock closed 2235"
expect_status 64 "an unknown profile is a usage error" \
    ip netns exec "$NS_A" env HOME="$CLIENT_HOME" "$PKNOCK" knock no-such-profile
stop_daemon

scenario "--wait reports open and still closed"
start_daemon --config "$CONFIG" --log-level debug
expect_status 1 "--wait after a wrong knock: exit 1" pk "$NS_A" --udp 192.0.2.1 5003 --wait 2231:1
expect_output "192.0.2.1 port 2231: still closed after 1 s" "--wait says still closed"
start=$SECONDS
expect_status 0 "--wait after the right knocks: exit 0" pk "$NS_A" --udp 192.0.2.1 5001 5002 5003 --wait 2231:10
expect_output "192.0.2.1 port 2231: open" "--wait says open"
[ $((SECONDS - start)) -le 3 ] && pass "--wait returns as soon as the port opens" || fail "--wait took $((SECONDS - start)) s"
expect_status 1 "--wait on a port nobody opened: exit 1" pk "$NS_B" 2001:db8:2::1 9 --wait 2232:2
expect_output "2001:db8:2::1 port 2232: still closed after 2 s" "--wait over IPv6 says still closed"
stop_daemon

kill "$CLIENT_SERVICE_PID" 2>/dev/null; wait "$CLIENT_SERVICE_PID" 2>/dev/null
trap netns_down EXIT
write_config ""
