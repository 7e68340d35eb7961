#!/usr/bin/env bash
# npm run demo: demo/main.ts against real kernel WireGuard, as root; inside the test VM
# (test/kernel/vm/) when this kernel has no WireGuard.
#
# The demo and the jitguard executable (lib/cli/main.ts) are bundled by esbuild (tsx's own
# compiler) first and run by plain node: a `node --import tsx` start transpiles every module
# of lib/ and costs tens of seconds in the TCG VM, per process, and each package file read
# over the VM's 9p share costs more. Packages are bundled too, except those that load native
# code or optional dependencies at run time; CommonJS ones (ws) get a real require. The
# bundles live in .cache/demo, inside the project, so the external packages resolve from
# node_modules and the addon is found by walking up to binding.gyp, as from dist/. The
# gateway's verification threads start from verify-worker.mjs beside the executable
# (lib/gateway/verify-worker-entry.ts).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -e build/Release/jitguard.node || -d prebuilds ]] || npm run build:native
out=.cache/demo
mkdir -p "$out"
node_modules/.bin/esbuild demo=demo/main.ts jitguard=lib/cli/main.ts verify-worker=lib/gateway/verify-worker.ts --bundle --platform=node --format=esm \
  --target=node20 --external:better-sqlite3 --external:node-gyp-build --external:prom-client \
  "--banner:js=import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);" \
  --outdir="$out" --out-extension:.js=.mjs --log-level=warning
# The daemon and ws-connect run as nobody: the bundles must be readable by it.
chmod 755 .cache "$out"
chmod 644 "$out"/*.mjs
probe="jgprobe$$"
if [[ $(id -u) == 0 ]] && ip link add "$probe" type wireguard 2>/dev/null; then
  ip link del "$probe"
  exec node "$out/demo.mjs" --jitguard "$out/jitguard.mjs"
fi
exec bash test/kernel/vm/run-in-vm.sh --timeout 300 -- node "$out/demo.mjs" --jitguard "$out/jitguard.mjs" --in-vm
