#!/usr/bin/env bash
# Runs pknockd under the restrictions of pknockd.service that could break it and that can be
# reproduced without systemd as PID 1, in private namespaces (net, mount, pid) this script creates:
#   ProtectProc=invisible, ProcSubset=pid   /proc mounted with hidepid=invisible,subset=pid
#   MemoryDenyWriteExecute=yes              prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN), the kernel's
#                                           own form of it (Linux 6.3+; inherited across exec)
#   CapabilityBoundingSet=CAP_NET_ADMIN     capsh-free: setpriv --bounding-set
# A knock must open the rule, the on_open hook must run, and pknock status must answer.
# Needs root. Never touches the host's ruleset (everything happens in the new network namespace).
#   Docs/systemd/sandbox-check.sh [BIN_DIR]
set -eu
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "sandbox-check: skipped: needs root"; exit 0; }
BIN=$(cd "${1:-$(swift build --show-bin-path)}" && pwd)
work=$(mktemp -d /tmp/pknock-sandbox.XXXXXX)
trap 'rm -rf "$work"' EXIT
cat > "$work/pknock.toml" <<CONF
[daemon]
table = "pk_sandbox"
nflog_group = 23
state_directory = "$work/state"
control_socket = "$work/control.sock"
[[rule]]
name = "SSH"
knock = [2002, 2001]
protect = [22]
autoclose = 60
on_open = "echo opened %IP% > $work/hook.out; ls /proc > $work/proc.list"
CONF
chmod 600 "$work/pknock.toml"

unshare --net --mount --pid --fork -- bash -eu -c '
    work=$1 BIN=$2
    mount -t proc -o hidepid=invisible,subset=pid proc /proc
    ip link set lo up
    ip addr add 192.0.2.1/32 dev lo
    # PR_SET_MDWE = 65, PR_MDWE_REFUSE_EXEC_GAIN = 1; then exec pknockd with only CAP_NET_ADMIN.
    python3 -c "
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit(\"prctl(PR_SET_MDWE): \" + os.strerror(ctypes.get_errno()))
os.execv(\"/usr/bin/setpriv\", [\"setpriv\", \"--bounding-set=-all,+net_admin\", \"--inh-caps=-all\", \"--\", sys.argv[1], \"--config\", sys.argv[2]])
" "$BIN/pknockd" "$work/pknock.toml" > "$work/pknockd.log" 2>&1 &
    daemon=$!
    for _ in $(seq 1 100); do grep -q "pknockd started" "$work/pknockd.log" && break; sleep 0.05; done
    grep -q "pknockd started" "$work/pknockd.log" || { cat "$work/pknockd.log"; echo "FAIL: pknockd did not start"; exit 1; }
    "$BIN/pknock" knock 192.0.2.1 2002 2001 --delay 20
    for _ in $(seq 1 60); do [ -s "$work/hook.out" ] && break; sleep 0.05; done
    [ "$(cat "$work/hook.out" 2>/dev/null)" = "opened 192.0.2.1" ] || { cat "$work/pknockd.log"; echo "FAIL: the hook did not run"; exit 1; }
    nft list set inet pk_sandbox SSH_allowed4 | grep -q 192.0.2.1 || { echo "FAIL: no grant"; exit 1; }
    "$BIN/pknock" status --control-socket "$work/control.sock" | grep -q 192.0.2.1 || { echo "FAIL: status"; exit 1; }
    ! grep -qx sys "$work/proc.list" || { echo "FAIL: /proc was not restricted (subset=pid)"; exit 1; }
    kill -TERM $daemon; wait $daemon || true
    grep -q "pknockd stopping" "$work/pknockd.log" || { cat "$work/pknockd.log"; echo "FAIL: no clean stop"; exit 1; }
' sandbox "$work" "$BIN"
echo "sandbox-check: pknockd runs with hidepid=invisible,subset=pid, MDWE and only CAP_NET_ADMIN: OK"
