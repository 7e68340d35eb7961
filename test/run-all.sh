#!/usr/bin/env bash
# Every test, every tier: the one command the README gives (`npm test`).
#   1. typecheck            tsc --noEmit
#   2. unit                 test/unit      no root, no kernel WireGuard
#   3. host-privileged      test/privileged root on this machine's kernel (netns, veth, AF_PACKET)
#   3b. package             test/package   root; npm pack, installed with no compiler on PATH
#   4. kernel               test/kernel    real kernel WireGuard, in a VM when the host has none
#   5. bench smoke          bench/run.sh --smoke: the netlink benchmarks at N=100 and the gateway's at tiny sizes, so they cannot rot
# Prints one closing line "N passed, N failed" over all tiers; exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed_tiers=()
skipped_tiers=()

tier() {
  local name=$1
  shift
  echo "=== $name ==="
  "$@" 2>&1 | tee -a "$log"
  local status=${PIPESTATUS[0]}
  if [[ $status == 77 ]]; then
    skipped_tiers+=("$name")
  elif [[ $status != 0 ]]; then
    failed_tiers+=("$name")
  fi
}

tier typecheck npx --no-install tsc -p tsconfig.json --noEmit
tier unit bash test/unit/run.sh
tier privileged bash test/privileged/run.sh
tier package bash test/package/run.sh
tier kernel bash test/kernel/run.sh
if [[ " ${skipped_tiers[*]} " == *" kernel "* ]]; then
  echo "=== bench-smoke === SKIPPED: needs what the kernel tier needs"
  skipped_tiers+=(bench-smoke)
else
  tier bench-smoke bash bench/run.sh --smoke
fi

# The spec reporter ends each run with "ℹ pass N" / "ℹ fail N".
sum() { sed -E "s/\x1b\[[0-9;]*m//g" "$log" | grep -aE "^ℹ $1 [0-9]+$" | awk '{ s += $3 } END { print s + 0 }'; }
passed=$(sum pass)
failed=$(sum fail)
echo
[[ ${#skipped_tiers[@]} -gt 0 ]] && echo "skipped tiers (not counted as passed): ${skipped_tiers[*]}"
[[ ${#failed_tiers[@]} -gt 0 ]] && echo "failed tiers: ${failed_tiers[*]}"
if [[ ${#failed_tiers[@]} -gt 0 && $failed == 0 ]]; then failed=${#failed_tiers[@]}; fi
echo "$passed passed, $failed failed"
[[ ${#failed_tiers[@]} == 0 ]]
