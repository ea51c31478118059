#!/usr/bin/env bash
# One command from a fresh Debian machine to PortKnockO at work: installs what is missing, builds,
# and shows pknockd guarding a port in network namespaces it creates (your own firewall is never
# touched). Run as root:
#
#   Scripts/demo.sh
#
# A server namespace runs pknockd with examples/pknock.toml and a TCP service on ports 22 and 21;
# client A knocks from its own namespace; client B never knocks. Everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"

if [[ "$(id -u)" != 0 ]]; then
    echo "demo: run as root (it installs packages and creates network namespaces)" >&2
    exit 1
fi
Scripts/install-deps.sh
echo "+ swift build"
swift build
BIN=$(swift build --show-bin-path)
PKNOCKD="$BIN/pknockd"
PKNOCK="$BIN/pknock"
source Scripts/lib/netns.sh

step() { printf '\n\033[1m%s\033[0m\n' "$*"; }
show() { echo "+ $*"; "$@"; }
try_connect() {  # NS HOST PORT LABEL
    if can_reach "$1" "$2" "$3"; then echo "   $4: connected to $2 port $3"; return 0; fi
    echo "   $4: no answer from $2 port $3 (dropped)"; return 1
}

netns_up
start_service 22 21

# The example config and its secret files, with the permissions pknockd insists on.
cp -r examples "$PK_WORK/etc"
chmod 600 "$PK_WORK/etc/pknock.toml" "$PK_WORK/etc/secrets/"*
# Keep the daemon's state (SPA replay memory) with the demo, not in /var/lib/pknock.
sed -i -e "s|^state_directory = .*|state_directory = \"$PK_WORK/state\"|" \
    -e "s|^control_socket = .*|control_socket = \"$PK_WORK/control.sock\"|" "$PK_WORK/etc/pknock.toml"

step "1. The configuration: a 3-knock sequence guarding SSH (22), an SPA rule guarding FTP (21)"
show "$PKNOCK" check "$PK_WORK/etc/pknock.toml"

step "2. pknockd starts in the server namespace and installs its nftables table"
start_daemon --config "$PK_WORK/etc/pknock.toml" --log-level debug
sed 's/^/   pknockd: /' "$PK_WORK/pknockd.log"

step "3. Before knocking, port 22 is hidden from everyone"
! try_connect "$NS_A" 192.0.2.1 22 "client A" || { echo "demo: port 22 should be closed"; exit 1; }

step "4. Client A knocks 2002, 2001, 2004 (TCP SYNs to ports that answer like any closed port)"
show a "$PKNOCK" knock 192.0.2.1 2002 2001 2004
sleep 0.2

step "5. Now client A gets in, and only client A"
try_connect "$NS_A" 192.0.2.1 22 "client A" || { echo "demo: the knock did not open port 22"; exit 1; }
! try_connect "$NS_B" 198.51.100.1 22 "client B" || { echo "demo: port 22 should stay closed to B"; exit 1; }

step "6. Single packet authorization: one UDP packet with an HMAC opens FTP (21) for client A"
! try_connect "$NS_A" 192.0.2.1 21 "client A" || exit 1
show a "$PKNOCK" knock --spa --secret-file "$PK_WORK/etc/secrets/ftp.open.secret" 192.0.2.1 4000
sleep 0.2
try_connect "$NS_A" 192.0.2.1 21 "client A" || { echo "demo: the SPA knock did not open port 21"; exit 1; }

step "7. pknock status: each rule's peers, as the original's /proc/net/xt_pknock/NAME listed them"
show s "$PKNOCK" status --control-socket "$PK_WORK/control.sock"

step "8. Access is an nftables set element with a kernel-side timeout (autoclose)"
s nft list set inet pknock SSH_allowed4 | sed 's/^/   /'
s nft list set inet pknock FTP_allowed4 | sed 's/^/   /'

step "9. What pknockd logged"
sed 's/^/   pknockd: /' "$PK_WORK/pknockd.log"

step "Demo complete: namespaces, table and processes are removed now."
