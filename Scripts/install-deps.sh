#!/usr/bin/env bash
# Installs the Debian packages PortKnockO builds, runs and tests with, if any are missing.
# Needs root (apt-get). Swift itself is expected at /opt/swift (or on PATH).
set -euo pipefail

PACKAGES=(
    nftables libnftables-dev          # the firewall and the library pknockd drives it through
    libnetfilter-log-dev libmnl-dev   # NFLOG intake (pulls libnfnetlink-dev)
    pkg-config                        # SwiftPM finds the C libraries through it
    iproute2 util-linux               # ip netns / veth, unshare, setpriv: tests and demo
    python3                           # the tests' TCP echo service and probes
    knockd                            # knockd's `knock` client: interoperability tests
    iptables                          # iptables-nft -F in the firewall-reload tests
    hping3                            # spoofed floods and hand-made SYNs: Scripts/e2e/70-flood.sh
    dpkg-dev lintian                  # make deb: dpkg-shlibdeps, and the packages' lint
    fwknop-client fwknop-server       # fwknop interoperability tests, both ways (Scripts/e2e/90-fwknop.sh)
    libqrencode-dev zbar-tools        # pknock client-config --qr, and decoding its QR code in the tests
    curl                              # the fleet tests talk to etcd's JSON gateway (Scripts/lib/fleet.sh)
)

missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    if [[ "$(id -u)" != 0 ]]; then
        echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "+ apt-get update && apt-get install -y ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    # The knockd and fwknop-server packages ship services; make sure neither runs on this host.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet fwknop-server 2>/dev/null; then
        systemctl stop fwknop-server || true
    fi
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet knockd 2>/dev/null; then
        systemctl stop knockd || true
    fi
fi

# etcd for the fleet tests (Scripts/e2e/95-fleet.sh runs its own 3-member cluster in namespaces). The
# package would start a system etcd on this host; keep it from starting with a policy-rc.d that denies
# every service start, only around this install and only if the host has none of its own.
ETCD_PACKAGES=(etcd-server etcd-client)
etcd_missing=()
for package in "${ETCD_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || etcd_missing+=("$package")
done
if ((${#etcd_missing[@]})); then
    if [[ "$(id -u)" != 0 ]]; then
        echo "install-deps: missing packages: ${etcd_missing[*]}; run as root" >&2
        exit 1
    fi
    policy_written=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# written by PortKnockO Scripts/install-deps.sh for the etcd install only\nexit 101\n' \
            > /usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        policy_written=1
    fi
    echo "+ apt-get install -y ${etcd_missing[*]} (service start denied by policy-rc.d)"
    apt-get update -q
    status=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${etcd_missing[@]}" || status=$?
    [[ -z "$policy_written" ]] || rm -f /usr/sbin/policy-rc.d
    ((status == 0)) || exit "$status"
    # Should the package have started its service anyway (no policy-rc.d honoured), stop it through the
    # init system: never by killing processes.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
        systemctl stop etcd || true
        systemctl disable etcd >/dev/null 2>&1 || true
    elif command -v invoke-rc.d >/dev/null 2>&1 && [[ -x /etc/init.d/etcd ]]; then
        invoke-rc.d etcd stop >/dev/null 2>&1 || true
    fi
fi
if ! command -v swift >/dev/null 2>&1; then
    if [[ -x /opt/swift/usr/bin/swift ]]; then
        echo "install-deps: add /opt/swift/usr/bin to PATH" >&2
    else
        echo "install-deps: Swift 6.2 or later is needed (swift not found)" >&2
    fi
    exit 1
fi
