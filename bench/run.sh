#!/usr/bin/env bash
# `npm run bench`: the netlink benchmarks of issue 5 (install latency, reload, dump, eviction,
# deletion) against wg(8) and the npm peers, all in one run of one kernel; with --gateway, the
# gateway benchmarks of issue 9.
#
#   bash bench/run.sh              N = 1,000 / 10,000 / 100,000 → bench/results/<date>.json,
#                                  bench/results/<date>.svg, bench/RESULTS.md
#   bash bench/run.sh --huge       adds N = 1,048,576 (VM gets 12 GiB)
#   bash bench/run.sh --smoke      N = 100, few iterations (CI): results and a rendered report go to
#                                  .cache/bench/smoke/, the checked-in files are left alone
#   other flags go to bench/netlink/runner.ts (--sizes 1000,5000, --only reload,dump, --samples N)
#   bash bench/run.sh --gateway    the gateway benchmarks of issue 9 instead (bench/gateway/runner.ts:
#                                  JIT first reply, burst, floods, switchover, reboot) →
#                                  bench/results/gateway-<date>.json and .svg, their section of
#                                  bench/RESULTS.md; other flags go to that runner (--only burst, ...)
#   --smoke runs both smokes (netlink at N = 100, then the gateway at tiny sizes) in one VM boot;
#   --smoke --gateway only the gateway's.
#
# On a host whose kernel has WireGuard (and we are root) the runner runs directly; otherwise it
# runs inside the qemu VM of test/kernel/vm/ (Debian's stock kernel, this machine's / over 9p)
# and its results come back through the VM's read-write share, .cache/vm-rw/.
# Exit status: the runner's (non-zero when a measurement of jitguard, wg(8) or ip(8) broke).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=default
gateway=0
runner_args=()
for arg in "$@"; do
  case $arg in
    --smoke) mode=smoke ;;
    --huge) mode=huge ;;
  esac
  if [[ $arg == --gateway ]]; then gateway=1; else runner_args+=("$arg"); fi
done

say() { echo "[bench] $*" >&2; }

# 1. What the bench needs on the host: the project's dev dependencies (tsx), the addon, the
#    bench's own devDependencies (bench/package.json), and the maxrss wrapper.
if [[ ! -e node_modules/tsx/package.json ]]; then
  say "installing the project's dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
if [[ ! -e build/Release/jitguard.node ]]; then
  say "building the addon (npm run build:native)"
  npm run build:native
fi
if [[ ! -e bench/node_modules/.package-lock.json || bench/package-lock.json -nt bench/node_modules/.package-lock.json ]]; then
  say "installing the bench's dependencies (npm ci --prefix bench)"
  npm ci --prefix bench --no-audit --no-fund
fi
maxrss=.cache/bench/maxrss
if [[ ! -x $maxrss || bench/netlink/maxrss.c -nt $maxrss ]]; then
  mkdir -p .cache/bench
  cc -O2 -Wall -o "$maxrss" bench/netlink/maxrss.c
fi
for anchor in install-floor knock-install timer-bystander; do
  binary=.cache/bench/$anchor
  if [[ ! -x $binary || bench/gateway/$anchor.c -nt $binary || bench/gateway/genl-message.h -nt $binary ]]; then
    mkdir -p .cache/bench
    cc -O2 -Wall -o "$binary" "bench/gateway/$anchor.c"
  fi
done

# 2. Where the results go: the VM's read-write share (also used when running directly).
rw=.cache/vm-rw/bench
mkdir -p "$rw"
stamp=$(date -u +%Y%m%dT%H%M%SZ)-$$
out="$PWD/$rw/$stamp.json"
gateway_out="$PWD/$rw/$stamp-gateway.json"
rm -f "$out" "$gateway_out"

host_json=$(node -e '
  const fs = require("fs"), os = require("os");
  const osr = (() => { try { return /PRETTY_NAME="?([^"\n]*)/.exec(fs.readFileSync("/etc/os-release", "utf8"))[1]; } catch { return ""; } })();
  console.log(JSON.stringify({ cpu: os.cpus()[0].model, cpus: String(os.cpus().length), kernel: os.release(), os: osr, memGiB: (os.totalmem() / 2 ** 30).toFixed(0), loadAverage: os.loadavg().map((l) => l.toFixed(2)).join(" ") }));')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
if [[ -n $(git status --porcelain -- lib csrc 2>/dev/null) ]]; then commit="$commit (with uncommitted changes in lib/ or csrc/)"; fi
export JITGUARD_BENCH_HOST="$host_json" JITGUARD_BENCH_COMMIT="$commit"

host_has_wireguard() {
  [[ $(id -u) == 0 ]] || return 1
  local probe="jgbprobe$$"
  ip link add "$probe" type wireguard 2>/dev/null || return 1
  ip link del "$probe"
}

netlink_runner=(node --import tsx bench/netlink/runner.ts "${runner_args[@]}" --out "$out")
gateway_runner=(node --import tsx bench/gateway/runner.ts "${runner_args[@]}" --out "$gateway_out")
if [[ $gateway == 1 ]]; then
  runner=("${gateway_runner[@]}")
elif [[ $mode == smoke ]]; then
  # Both smokes in one VM boot; the exit status is the first failure's.
  runner=(bash -c '"${@:2:$1}"; a=$?; "${@:$(($1 + 2))}"; b=$?; exit $(( a ? a : b ))' both "${#netlink_runner[@]}" "${netlink_runner[@]}" "${gateway_runner[@]}")
else
  runner=("${netlink_runner[@]}")
fi
start=$(date +%s)
status=0
if host_has_wireguard; then
  say "this kernel has WireGuard: running directly"
  export JITGUARD_BENCH_VM="${JITGUARD_BENCH_VM:-}"
  "${runner[@]}" || status=$?
else
  [[ $(id -u) == 0 ]] || { say "needs root (to install and boot the VM, or to use kernel WireGuard here)"; exit 1; }
  case $mode in
    smoke) mem=2048 timeout=900 ;;
    huge) mem=12288 timeout=14400 ;;
    *) mem=4096 timeout=5400 ;;
  esac
  # The gateway's reboot scenario holds 10^6 peers in its store and the runner's memory.
  if [[ $gateway == 1 && $mode != smoke ]]; then mem=6144; fi
  cpus=${JITGUARD_BENCH_CPUS:-2}
  mem=${JITGUARD_BENCH_MEM:-$mem}
  export JITGUARD_BENCH_VM="qemu ${JITGUARD_VM_ACCEL:-tcg}, $cpus vCPU, $mem MiB, Debian stock kernel (host kernel has no WireGuard)"
  bash test/kernel/vm/setup.sh >&2
  say "running inside the VM ($cpus vCPU, $mem MiB, mode $mode)"
  bash test/kernel/vm/run-in-vm.sh --cpus "$cpus" --mem "$mem" --timeout "$timeout" -- "${runner[@]}" || status=$?
fi
say "runner finished with status $status after $(( $(date +%s) - start )) s"

if [[ ! -s $out && ! -s $gateway_out ]]; then
  say "no results file was written ($out, $gateway_out)"
  exit $(( status == 0 ? 1 : status ))
fi

# 3. Results and report.
json_date() { node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).date)' "$1"; }
if [[ -s $out ]]; then
  date=$(json_date "$out")
  if [[ $mode == smoke ]]; then
    dir=.cache/bench/smoke
    mkdir -p "$dir"
    cp "$out" "$dir/smoke-$date.json"
    node --import tsx bench/netlink/report.ts "$dir/smoke-$date.json" --out-dir "$dir"
  else
    mkdir -p bench/results
    cp "$out" "bench/results/$date.json"
    node --import tsx bench/netlink/report.ts "bench/results/$date.json"
  fi
  rm -f "$out"
fi
if [[ -s $gateway_out ]]; then
  date=$(json_date "$gateway_out")
  if [[ $mode == smoke ]]; then
    dir=.cache/bench/smoke
    mkdir -p "$dir"
    cp "$gateway_out" "$dir/gateway-smoke-$date.json"
    node --import tsx bench/gateway/report.ts "$dir/gateway-smoke-$date.json" --out-dir "$dir"
  else
    mkdir -p bench/results
    cp "$gateway_out" "bench/results/gateway-$date.json"
    node --import tsx bench/gateway/report.ts "bench/results/gateway-$date.json"
  fi
  rm -f "$gateway_out"
elif [[ $gateway == 1 || $mode == smoke ]]; then
  say "the gateway runner wrote no results file ($gateway_out)"
  status=$(( status == 0 ? 1 : status ))
fi
exit "$status"
