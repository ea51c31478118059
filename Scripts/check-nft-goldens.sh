#!/usr/bin/env bash
# Runs Tests/KnockDaemonTests/testdata/validate-nft.sh (the FirewallLayout goldens against the real
# kernel and nft, in private network namespaces) on a copy of testdata/, so the tree is not
# rewritten, then checks that the `nft list ruleset` captures it made match the committed ones:
# a difference means nft now reads a golden differently from what FirewallLayoutTests assume.
# The JSON listings are not compared (their "expires" values depend on timing). Needs root.
#
#   Scripts/check-nft-goldens.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "check-nft-goldens: needs root"; exit 1; fi
work=$(mktemp -d /tmp/pknock-goldens.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -a Tests/KnockDaemonTests/testdata/. "$work/"
"$work/validate-nft.sh"
status=0
for ruleset in Tests/KnockDaemonTests/testdata/*.ruleset; do
    if diff -u "$ruleset" "$work/$(basename "$ruleset")"; then
        echo "ok $(basename "$ruleset") matches nft's listing"
    else
        echo "FAIL: $(basename "$ruleset") differs from what nft lists now"; status=1
    fi
done
exit $status
