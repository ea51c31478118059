#!/usr/bin/env bash
# CI check of the Debian packages built by build-deb.sh: installs them with apt, checks the installed
# files and the binaries' libraries, runs the namespace end-to-end tests against the INSTALLED
# binaries with /opt/swift hidden (a private mount namespace with an empty tmpfs over it), then
# purges both packages inside a network namespace where an installed pknockd left its table, and
# checks that nothing is left behind. Needs root; changes this machine's package set (it installs
# and purges pknockd and pknock) but never its firewall: every nftables operation, the maintainer
# scripts' `pknockd --teardown` included, happens in a namespace made here.
#
#   Scripts/package/test-deb.sh [DEB_DIR] [E2E_PATTERN]   (default: the top directory; all e2e files)
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "test-deb: needs root"; exit 1; fi
DEBS=${1:-.}
PATTERN=${2:-}
VERSION=$(sed -n 's/^public let portKnockOVersion = "\(.*\)"$/\1/p' Sources/KnockCore/Version.swift)
VERSION=${VERSION//-/\~}
ARCH=$(dpkg --print-architecture)
DAEMON_DEB=$(realpath "$DEBS/pknockd_${VERSION}_${ARCH}.deb")
CLIENT_DEB=$(realpath "$DEBS/pknock_${VERSION}_${ARCH}.deb")

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "  ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "  FAIL $1"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

NS="pk-deb-$$"
WORK=$(mktemp -d /tmp/pknock-deb.XXXXXX)
DAEMON_PID=""
cleanup() {
    [ -z "$DAEMON_PID" ] || kill "$DAEMON_PID" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== install"
for deb in "$DAEMON_DEB" "$CLIENT_DEB"; do [ -f "$deb" ] || { echo "test-deb: $deb missing (make deb)"; exit 1; }; done
# Everything the packages depend on is already here (libnftables1 and the
# other libraries come with the build dependencies).
if DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$DAEMON_DEB" "$CLIENT_DEB" > "$WORK/apt.log" 2>&1; then
    pass "apt-get install ./pknockd_*.deb ./pknock_*.deb"
else
    cat "$WORK/apt.log"; fail "apt-get install"; echo "test-deb: $PASSED passed, $FAILED failed"; exit 1
fi
dpkg -L pknockd pknock | sort -u > "$WORK/files"
check "pknockd and pknock are installed, version $VERSION" \
    test "$(dpkg-query -W -f='${Version}\n' pknockd pknock 2>/dev/null | sort -u)" = "$VERSION"
for path in /usr/sbin/pknockd /usr/bin/pknock /usr/lib/systemd/system/pknockd.service \
    /usr/share/man/man8/pknockd.8.gz /usr/share/man/man5/pknock.toml.5.gz /usr/share/man/man1/pknock.1.gz \
    /usr/share/bash-completion/completions/pknock /usr/share/doc/pknockd/examples/pknock.toml; do
    check "installed: $path" test -f "$path"
done
check "/etc/pknock is mode 0700, its pknock.toml 0600, both root's" \
    test "$(stat -c '%a %U' /etc/pknock /etc/pknock/pknock.toml | tr '\n' ' ')" = "700 root 600 root "
check "/var/lib/pknock is mode 0700" test "$(stat -c %a /var/lib/pknock)" = 700
check "pknock.toml is a conffile" grep -q '^ /etc/pknock/pknock.toml ' <(dpkg-query -W -f='${Conffiles}\n' pknockd)
check "the default configuration passes pknock check" /usr/bin/pknock check /etc/pknock/pknock.toml

echo "== libraries of the installed binaries"
for binary in /usr/sbin/pknockd /usr/bin/pknock; do
    libs=$(ldd "$binary" 2>&1)
    check "$binary needs no Swift runtime (libswift*, libFoundation*, /opt/swift)" \
        bash -c '! grep -E "libswift|libFoundation|lib_Foundation|libdispatch|/opt/swift" <<<"$1"' _ "$libs"
    check "$binary finds every library it needs" bash -c '! grep -q "not found" <<<"$1"' _ "$libs"
    echo "$libs" | sed 's/^/       /'
done

echo "== end-to-end tests against the installed binaries, /opt/swift hidden"
mkdir -p "$WORK/bin"
ln -s /usr/sbin/pknockd /usr/bin/pknock "$WORK/bin/"
# A private mount namespace: the tmpfs over /opt/swift (and the netns mounts of the tests) stay in it.
unshare --mount --propagation private bash -c '
    set -u
    [ ! -d /opt/swift ] || mount -t tmpfs -o ro,size=4k none /opt/swift || exit 90
    [ -z "$(ls -A /opt/swift 2>/dev/null)" ] || exit 91
    export PATH=$(tr ":" "\n" <<<"$PATH" | grep -v "^/opt/swift" | paste -sd:)
    ! command -v swift >/dev/null || exit 92
    "$1/pknock" --version >/dev/null || exit 93
    Scripts/netns-e2e.sh "$1" "$2"
' _ "$WORK/bin" "$PATTERN" 2>&1 | tee "$WORK/e2e.log"
status=${PIPESTATUS[0]}
case $status in
    90 | 91) fail "could not hide /opt/swift (status $status)" ;;
    92) fail "swift is still on PATH" ;;
    93) fail "the installed pknock does not run without /opt/swift" ;;
esac
e2e=$(grep -E '^netns-e2e: [0-9]+ passed, [0-9]+ failed' "$WORK/e2e.log" | tail -1)
if [ -n "$e2e" ]; then
    PASSED=$((PASSED + $(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$e2e")))
    FAILED=$((FAILED + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$e2e")))
elif ((status < 90)); then
    fail "the end-to-end tests did not report (status $status)"
fi

echo "== purge, in a network namespace where the installed pknockd left its table"
ip netns add "$NS"
ip -n "$NS" link set lo up
# The packaged configuration (table inet pknock), but the control socket and state outside /run
# and /var/lib, so the daemon leaves nothing there itself.
ip netns exec "$NS" /usr/sbin/pknockd --config /etc/pknock/pknock.toml --control-socket "$WORK/control.sock" \
    --state-directory "$WORK/state" > "$WORK/pknockd.log" 2>&1 &
DAEMON_PID=$!
has_table() { ip netns exec "$NS" nft list table inet pknock >/dev/null 2>&1; }
for _ in $(seq 50); do has_table && break; sleep 0.1; done
check "the installed pknockd made its table" has_table
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"; DAEMON_PID=""
check "the stopped pknockd left its table in force" has_table
if ip netns exec "$NS" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q pknockd pknock > "$WORK/purge.log" 2>&1; then
    pass "apt-get purge pknockd pknock"
else
    cat "$WORK/purge.log"; fail "apt-get purge"
fi
grep -q "removed table inet pknock" "$WORK/purge.log" && pass "the prerm said it removed the table" \
    || { cat "$WORK/purge.log"; fail "the prerm did not remove the table"; }
check "no table is left in the namespace" test -z "$(ip netns exec "$NS" nft list tables)"
check "dpkg knows neither package any more" \
    bash -c '! dpkg-query -W -f="\${db:Status-Status}\n" pknockd pknock 2>/dev/null | grep -qv "^not-installed$"'
left=()
while read -r path; do
    if [ -e "$path" ] && ! [ -d "$path" ]; then left+=("$path"); fi
    case $path in /etc/pknock* | /var/lib/pknock* | /usr/share/doc/pknock*) [ ! -e "$path" ] || left+=("$path") ;; esac
done < "$WORK/files"
check "nothing of the packages is left (${left[*]:-none})" test ${#left[@]} = 0
for path in /etc/pknock /var/lib/pknock /usr/sbin/pknockd /usr/bin/pknock; do check "gone: $path" test ! -e "$path"; done
ip netns del "$NS"
check "the purge namespace is gone" bash -c '! ip netns list | grep -q "^$1\\b"' _ "$NS"

echo "test-deb: $PASSED passed, $FAILED failed"
((FAILED == 0))
