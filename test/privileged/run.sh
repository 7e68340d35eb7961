#!/usr/bin/env bash
# Host-privileged tier: root on this machine's own kernel (network namespaces, veth,
# AF_PACKET, TUN); no WireGuard module needed. Fails under CI=true without root; skips
# (exit 77) with a message elsewhere.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
shopt -s nullglob
files=(test/privileged/*.test.ts)
if [[ ${#files[@]} == 0 ]]; then
  echo "privileged tier: no test files" >&2
  exit 1
fi
if [[ $(id -u) != 0 ]]; then
  if [[ ${CI:-} == true ]]; then echo "privileged tier FAILED: needs root" >&2; exit 1; fi
  echo "privileged tier SKIPPED: needs root (outside CI only)" >&2
  exit 77
fi
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
