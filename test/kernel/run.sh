#!/usr/bin/env bash
# Kernel tier: runs test/kernel/*.test.ts against real kernel WireGuard.
#
# On a host whose kernel can create WireGuard interfaces (and we are root), the tests run
# directly. Otherwise they run inside the qemu VM of test/kernel/vm/ (Debian's stock kernel,
# this machine's root over 9p). If neither is possible: under CI=true that is a failure;
# elsewhere the tier is skipped with a message saying why (and the summary says so).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

files=(test/kernel/*.test.ts)
runner=(node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}")

host_has_wireguard() {
  [[ $(id -u) == 0 ]] || return 1
  local probe="jgprobe$$"
  ip link add "$probe" type wireguard 2>/dev/null || return 1
  ip link del "$probe"
}

unavailable() {
  if [[ ${CI:-} == true ]]; then
    echo "kernel tier FAILED: $1 (CI requires the kernel tier; it never skips there)" >&2
    exit 1
  fi
  echo "kernel tier SKIPPED: $1 (outside CI only; run as root on a machine where qemu-system-x86 can be installed)" >&2
  exit 77
}

if host_has_wireguard; then
  echo "kernel tier: this kernel has WireGuard; running directly"
  exec "${runner[@]}"
fi
[[ $(id -u) == 0 ]] || unavailable "needs root to install and run the VM"
start=$(date +%s)
bash test/kernel/vm/setup.sh || unavailable "could not prepare the VM (see above)"
bash test/kernel/vm/run-in-vm.sh --timeout "${JITGUARD_KERNEL_TIMEOUT:-2400}" -- "${runner[@]}"
status=$?
echo "kernel tier: VM run took $(( $(date +%s) - start )) s, exit status $status"
[[ $status == 125 ]] && unavailable "the VM did not start or did not report a status"
exit $status
