#!/usr/bin/env bash
# Checks Docs/systemd/pknockd.service with `systemd-analyze verify`, pointing it at built binaries.
#   Docs/systemd/verify.sh [BIN_DIR]     (default: swift build --show-bin-path)
# Skips (exit 0, with a message) when systemd-analyze is not installed (Debian package: systemd).
set -eu
cd "$(dirname "$0")/../.."
if ! command -v systemd-analyze >/dev/null; then
    echo "verify-unit: skipped: systemd-analyze not installed (apt-get install systemd)"; exit 0
fi
BIN=${1:-$(swift build --show-bin-path)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e "s|/usr/local/sbin/pknockd|$BIN/pknockd|; s|/usr/local/bin/pknock|$BIN/pknock|" \
    Docs/systemd/pknockd.service > "$work/pknockd.service"
# Documentation= man pages are only there once installed; everything else must be clean.
out=$(systemd-analyze verify "$work/pknockd.service" 2>&1 | grep -v "Command 'man " || true)
if [ -n "$out" ]; then echo "$out"; echo "verify-unit: FAILED"; exit 1; fi
echo "verify-unit: pknockd.service OK"
