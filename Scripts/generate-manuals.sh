#!/usr/bin/env bash
# Regenerates Docs/man/pknock.1 and Docs/man/pknockd.8 from the commands' own help, with
# swift-argument-parser's generate-manual plugin. Run after changing an option or a help text;
# Tests/CLITests/ManualTests.swift fails while a man page lags behind the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
date=${MANUAL_DATE:-$(date +%Y-%m-%d)}
work=Docs/man/.generate
rm -rf "$work"
mkdir -p "$work/1" "$work/8"
for section in 1 8; do
    swift package --allow-writing-to-package-directory generate-manual --output-directory "$work/$section" \
        --section "$section" --authors "PortKnockO developers" --date "$date"
done
mv "$work/1/pknock.1" Docs/man/pknock.1
mv "$work/8/pknockd.8" Docs/man/pknockd.8
rm -rf "$work"
echo "wrote Docs/man/pknock.1 and Docs/man/pknockd.8"
