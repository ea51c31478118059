#!/usr/bin/env bash
# Builds the Debian packages (`make deb` runs this):
#
#   pknockd_VERSION_ARCH.deb   the daemon, its systemd unit, pknockd.8 and pknock.toml.5, a default
#                              /etc/pknock/pknock.toml (conffile), /var/lib/pknock, completions,
#                              the examples in /usr/share/doc/pknockd/examples
#   pknock_VERSION_ARCH.deb    the client alone: /usr/bin/pknock, pknock.1, completions
#
#   Scripts/package/build-deb.sh [OUT_DIR]       (default: the repository's top directory)
#
# Release builds with --static-swift-stdlib in their own scratch path (.build-deb), stripped, so
# neither package needs a Swift runtime; Depends come from dpkg-shlibdeps on the binaries. Runs
# lintian on both when it is installed (exit status 1 on a lintian error). Needs dpkg-dev; no root.
# VERSION is portKnockOVersion from Sources/KnockCore/Version.swift, with "-" turned into "~" so a
# pre-release ("0.1.0-dev" -> "0.1.0~dev") sorts before its release.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=$(mkdir -p "${1:-$ROOT}" && cd "${1:-$ROOT}" && pwd)
export PATH="$PATH:/opt/swift/usr/bin"

UPSTREAM=$(sed -n 's/^public let portKnockOVersion = "\(.*\)"$/\1/p' Sources/KnockCore/Version.swift)
[ -n "$UPSTREAM" ] || { echo "build-deb: portKnockOVersion not found" >&2; exit 1; }
VERSION=${UPSTREAM//-/\~}
ARCH=$(dpkg --print-architecture)
MAINTAINER="PortKnockO maintainers <maintainers@users.noreply.b-seed-e923574a.example>"
SCRATCH=$ROOT/.build-deb
STAGE=$SCRATCH/stage
# Timestamps and the changelog date from the last commit, so the same tree gives the same packages.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

# Full RELRO, as Debian's hardening flags give C programs: the GOT is read-only once loaded.
LINK_HARDENING="-Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now"

echo "build-deb: pknockd and pknock $VERSION for $ARCH"
rm -rf "$STAGE"
mkdir -p "$STAGE"
make --no-print-directory install DESTDIR="$STAGE/all" PREFIX=/usr SYSCONFDIR=/etc \
    SWIFTFLAGS="-c release --static-swift-stdlib --scratch-path $SCRATCH $LINK_HARDENING" COMPLETIONS="$SCRATCH/completions" \
    ZSHCOMPDIR=/usr/share/zsh/vendor-completions >/dev/null

# move PACKAGE PATH...: moves PATHs of the `make install` tree into PACKAGE's tree.
move() {
    local package=$1 path; shift
    for path in "$@"; do
        mkdir -p "$STAGE/$package/$(dirname "$path")"
        mv "$STAGE/all/$path" "$STAGE/$package/$path"
    done
}
move pknock usr/bin/pknock usr/share/man/man1/pknock.1 usr/share/bash-completion/completions/pknock \
    usr/share/zsh/vendor-completions/_pknock usr/share/fish/vendor_completions.d/pknock.fish
move pknockd usr/sbin/pknockd usr/share/man/man8/pknockd.8 usr/share/man/man5/pknock.toml.5 \
    usr/lib/systemd/system/pknockd.service usr/share/bash-completion/completions/pknockd \
    usr/share/zsh/vendor-completions/_pknockd usr/share/fish/vendor_completions.d/pknockd.fish
rm -f "$STAGE/all/etc/pknock/pknock.toml"
rmdir "$STAGE/all/etc/pknock" "$STAGE/all/etc"
left=$(find "$STAGE/all" -type f)
[ -z "$left" ] || { echo "build-deb: make install made files no package takes: $left" >&2; exit 1; }

D=$STAGE/pknockd
install -d -m 0700 "$D/etc/pknock" "$D/var/lib/pknock"
install -m 0600 Scripts/package/pknock.toml "$D/etc/pknock/pknock.toml"
install -d "$D/usr/share/doc/pknockd/examples/secrets"
install -m 0644 examples/pknock.toml examples/xt_pknock.rules "$D/usr/share/doc/pknockd/examples/"
install -m 0644 examples/secrets/* "$D/usr/share/doc/pknockd/examples/secrets/"
install -m 0644 Docs/control-protocol.md Docs/spa-v2.md "$D/usr/share/doc/pknockd/"
install -m 0644 Docs/systemd/README.md "$D/usr/share/doc/pknockd/systemd.md"
install -d "$D/usr/share/lintian/overrides"
install -m 0644 Scripts/package/pknockd.lintian-overrides "$D/usr/share/lintian/overrides/pknockd"

for package in pknockd pknock; do
    P=$STAGE/$package
    find "$P/usr/bin" "$P/usr/sbin" -type f -exec strip --remove-section=.comment --remove-section=.note \
        --strip-unneeded {} + 2>/dev/null || true
    # The generated pages carry empty lines (paragraph breaks of the help texts), which groff
    # warns about: make them the mdoc paragraph macro they stand for.
    for page in "$P"/usr/share/man/man*/*; do sed -i 's/^$/.Pp/' "$page"; gzip -9n "$page"; done
    # bash-completion files are sourced, not run: no #! line.
    sed -i '1{/^#!/d}' "$P"/usr/share/bash-completion/completions/*
    install -d "$P/usr/share/doc/$package"
    install -m 0644 Scripts/package/copyright "$P/usr/share/doc/$package/copyright"
    {
        echo "portknocko ($VERSION) unstable; urgency=medium"
        echo
        echo "  * Built from the PortKnockO source tree; its CHANGELOG.md lists the changes."
        echo
        echo " -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
    } | gzip -9n > "$P/usr/share/doc/$package/changelog.gz"
done

# depends BINARY: the shared-library Depends of BINARY, from dpkg-shlibdeps (which wants a
# debian/control to read: a temporary one).
depends() {
    local work
    work=$(mktemp -d)
    mkdir "$work/debian"
    printf 'Source: portknocko\n\nPackage: pknock\nArchitecture: any\n' > "$work/debian/control"
    (cd "$work" && dpkg-shlibdeps -O -e"$1" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
    rm -rf "$work"
}

# control PACKAGE DEPENDS SUMMARY DESCRIPTION...: writes PACKAGE's DEBIAN/control and md5sums.
control() {
    local package=$1 depends=$2 summary=$3 line; shift 3
    local P=$STAGE/$package
    mkdir -p "$P/DEBIAN"
    {
        echo "Package: $package"
        echo "Source: portknocko"
        echo "Version: $VERSION"
        echo "Architecture: $ARCH"
        echo "Maintainer: $MAINTAINER"
        echo "Installed-Size: $(du -sk --exclude=DEBIAN "$P" | cut -f1)"
        echo "Depends: $depends"
        echo "Section: net"
        echo "Priority: optional"
        echo "Description: $summary"
        for line in "$@"; do [ -n "$line" ] && echo " $line" || echo " ."; done
    } > "$P/DEBIAN/control"
    (cd "$P" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' \
        | sort -z | xargs -0 md5sum) > "$P/DEBIAN/md5sums"
}

control pknock "$(depends "$STAGE/pknock/usr/bin/pknock")" \
    "port-knocking and single packet authorization client" \
    "pknock knocks (port sequences, SPA packets) on hosts that run pknockd," \
    "xt_pknock or knockd, and controls a local pknockd: status, events, open and" \
    "close. It also generates secrets, checks pknockd configurations and translates" \
    "xt_pknock iptables rules." \
    "" \
    "This package holds the client alone; the daemon is in pknockd."

# pknockd's unit runs `pknock check` before starting, and sends SIGHUP with /bin/kill (procps).
control pknockd "$(depends "$STAGE/pknockd/usr/sbin/pknockd"), pknock (= $VERSION), procps" \
    "port-knocking and single packet authorization daemon" \
    "pknockd keeps ports closed (an nftables table of its own, family inet) and" \
    "opens them for a peer that knocks the right port sequence or sends a valid" \
    "single packet authorization (HMAC, with replay protection). Knocks reach it" \
    "through NFLOG; rules are written in TOML or in xt_pknock's iptables syntax." \
    "" \
    "The default configuration defines no rule and the service is not enabled:" \
    "edit /etc/pknock/pknock.toml (examples in /usr/share/doc/pknockd/examples)," \
    "then systemctl enable --now pknockd."
echo /etc/pknock/pknock.toml > "$D/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "Scripts/package/pknockd.$script" "$D/DEBIAN/$script"
done

find "$STAGE/pknockd" "$STAGE/pknock" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
status=0
for package in pknockd pknock; do
    deb="$OUT/${package}_${VERSION}_${ARCH}.deb"
    dpkg-deb --root-owner-group -Zxz --build "$STAGE/$package" "$deb" >/dev/null
    echo "build-deb: $deb ($(du -k "$deb" | cut -f1) KiB; Depends: $(dpkg-deb -f "$deb" Depends))"
    if command -v lintian >/dev/null; then
        lintian --fail-on error "$deb" || status=1
    else
        echo "build-deb: lintian not installed: packages not checked (apt-get install lintian)"
    fi
done
exit $status
