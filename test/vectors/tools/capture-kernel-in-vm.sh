#!/usr/bin/env bash
# Captures initiations from the Linux kernel's WireGuard: boots the project's VM
# (test/kernel/vm/run-in-vm.sh: Debian stock kernel under qemu, host root over 9p) and runs
# capture.sh kernel inside it. The guest writes to <project>/.cache/vm-rw (shared read-write),
# then the file is moved to test/vectors/linux-kernel.json.
#   capture-kernel-in-vm.sh [clients=4] [seconds=40]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PROJECT="$(cd "$HERE/../../.." && pwd)"
N="${1:-4}"
SECS="${2:-40}"
RW="$PROJECT/.cache/vm-rw"
mkdir -p "$RW"
OUT_VM="$RW/linux-kernel-vectors.json"
rm -f "$OUT_VM"
bash "$PROJECT/test/kernel/vm/run-in-vm.sh" --timeout 900 -- bash "$HERE/capture.sh" kernel "$OUT_VM" "$N" "$SECS"
mv "$OUT_VM" "$HERE/../linux-kernel.json"
echo "wrote $HERE/../linux-kernel.json" >&2
