#!/usr/bin/env bash
# Runs every libFuzzer target in Fuzz/ for a bounded time; exits non-zero on a crash (or a target
# that does not build). Needs no root and no network.
#
#   Scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 30 s; all targets)
#
# Each target starts from its committed seed corpus in Fuzz/corpus/NAME; inputs it finds go to a
# scratch corpus under $FUZZ_WORK (default: a temporary directory, removed afterwards), so the
# committed seeds only change by hand. A crash leaves its input in $FUZZ_WORK/artifacts and the
# script prints how to replay it:  Fuzz/.build/debug/TARGET ARTIFACT
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"

SECONDS_PER_TARGET=${1:-30}
shift || true
declare -A CORPUS=(
    [FuzzPacketParser]=packet-parser
    [FuzzSPAVerify]=spa-verify
    [FuzzRulesFile]=rules-file
    [FuzzTOML]=toml
    [FuzzNetlink]=netlink
)
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(FuzzPacketParser FuzzSPAVerify FuzzRulesFile FuzzTOML FuzzNetlink)
SCRATCH=${FUZZ_SCRATCH_PATH:-Fuzz/.build}

echo "=== fuzz: building (libFuzzer + AddressSanitizer)"
if ! swift build --package-path Fuzz --scratch-path "$SCRATCH" -c debug \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 | grep -v "Cannot export local symbol"; then
    echo "fuzz: build failed"; exit 1
fi
BIN=$(swift build --package-path Fuzz --scratch-path "$SCRATCH" -c debug --show-bin-path)

WORK=${FUZZ_WORK:-$(mktemp -d /tmp/pknock-fuzz.XXXXXX)}
[ -n "${FUZZ_WORK:-}" ] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/artifacts"
failed=()
for target in "${TARGETS[@]}"; do
    seeds="Fuzz/corpus/${CORPUS[$target]:?unknown fuzz target $target}"
    mkdir -p "$WORK/corpus/$target"
    echo "=== fuzz: $target for ${SECONDS_PER_TARGET}s (seeds: $seeds)"
    # -rss_limit_mb guards against runaway memory; -timeout flags an input slower than 5 s as a hang.
    if "$BIN/$target" "$WORK/corpus/$target" "$seeds" -max_total_time="$SECONDS_PER_TARGET" \
            -timeout=5 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
            -artifact_prefix="$WORK/artifacts/$target-" >"$WORK/$target.log" 2>&1; then
        grep -E "^stat::number_of_executed_units|^Done [0-9]+ runs" "$WORK/$target.log" | tail -2 | sed 's/^/  /'
    else
        failed+=("$target")
        tail -40 "$WORK/$target.log"
        echo "  FAIL $target: crash input(s) kept in $WORK/artifacts (replay: $BIN/$target FILE)"
        trap - EXIT
    fi
done
if ((${#failed[@]})); then echo "fuzz: ${#failed[@]} target(s) crashed: ${failed[*]}"; exit 1; fi
echo "fuzz: ${#TARGETS[@]} target(s) ran ${SECONDS_PER_TARGET}s each without a crash"
