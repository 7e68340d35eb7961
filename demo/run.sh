#!/usr/bin/env bash
# The main job: the demo gateway (demo/gateway.ts) against real kernel WireGuard; inside the
# test VM when this kernel has none (see test/kernel/vm/README.md). Needs root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -e build/Release/jitguard.node || -d prebuilds ]] || npm run build:native
probe="jgprobe$$"
if [[ $(id -u) == 0 ]] && ip link add "$probe" type wireguard 2>/dev/null; then
  ip link del "$probe"
  exec node --import tsx demo/gateway.ts
fi
exec bash test/kernel/vm/run-in-vm.sh --timeout 600 -- node --import tsx demo/gateway.ts
