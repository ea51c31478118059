#!/usr/bin/env bash
# The steps of pknockd's knock and grant paths timed cold (after a gap in which the machine evicts
# their code and data) and warm, in one process and without the kernel: Sources/coldbench. Needs no
# root and no network. One command:
#
#   Scripts/bench/coldpath.sh [GAP_MS]
#
# Pins itself to CPU 0 when taskset is there; grant log lines go to /dev/null.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/opt/swift/usr/bin"
swift build -c release --product coldbench >/dev/null 2>&1 || { echo "coldpath: build failed (swift build -c release --product coldbench)"; exit 1; }
BIN="$(swift build -c release --show-bin-path)/coldbench"
echo "=== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
if command -v taskset >/dev/null; then exec taskset -c 0 "$BIN" "$@" 2>/dev/null; fi
exec "$BIN" "$@" 2>/dev/null
