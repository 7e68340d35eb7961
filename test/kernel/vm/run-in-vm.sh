#!/usr/bin/env bash
# Run one command inside a throw-away VM booted from Debian's stock kernel (which has
# WireGuard), with the host's root filesystem as a read-only 9p share under a tmpfs overlay.
#
#   bash test/kernel/vm/run-in-vm.sh [--cpus N] [--mem MiB] [--timeout SEC] -- command args...
#
# Exits with the command's exit status; 124 on timeout; 125 if the VM never reported one.
# Guest stdout -> host stdout (serial ttyS0), guest stderr -> host stderr (serial ttyS1).
# <project>/.cache/vm-rw is shared read-write at the same absolute path inside the guest.
# See README.md in this directory for the environment variables.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT="$(cd "$HERE/../../.." && pwd)"
CACHE="$PROJECT/.cache/vm"
RW="$PROJECT/.cache/vm-rw"

CPUS="${JITGUARD_VM_CPUS:-2}"
MEM="${JITGUARD_VM_MEM:-2048}"
TIMEOUT="${JITGUARD_VM_TIMEOUT:-1800}"
ACCEL="${JITGUARD_VM_ACCEL:-tcg}"
if [[ $ACCEL == tcg* ]]; then CPU_MODEL="${JITGUARD_VM_CPU:-max}"; else CPU_MODEL="${JITGUARD_VM_CPU:-host}"; fi
QUIET="${JITGUARD_VM_QUIET:-0}"

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
say() { [[ $QUIET == 1 ]] || printf '[vm] %s\n' "$*" >&2; }
die() { printf '[vm] ERROR: %s\n' "$*" >&2; exit 125; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0)); }

while (($#)); do
  case "$1" in
    --cpus) CPUS="${2:-}"; shift 2 || usage ;;
    --cpus=*) CPUS="${1#*=}"; shift ;;
    --mem) MEM="${2:-}"; shift 2 || usage ;;
    --mem=*) MEM="${1#*=}"; shift ;;
    --timeout) TIMEOUT="${2:-}"; shift 2 || usage ;;
    --timeout=*) TIMEOUT="${1#*=}"; shift ;;
    -h | --help) usage ;;
    --) shift; break ;;
    -*) echo "[vm] unknown option: $1" >&2; usage ;;
    *) break ;;
  esac
done
(($#)) || usage
is_uint "$CPUS" || die "--cpus must be a positive integer (got '$CPUS')"
is_uint "$MEM" || die "--mem must be a positive integer of MiB (got '$MEM')"
is_uint "$TIMEOUT" || die "--timeout must be a positive integer of seconds (got '$TIMEOUT')"

t0=$EPOCHREALTIME
bash "$HERE/setup.sh" || die "setup.sh failed"
# shellcheck source=/dev/null
source "$CACHE/current.env"
t_setup=$EPOCHREALTIME

# ---- control directory for this run (inside the rw share, so the guest can read/write it)
run_id="$$-${EPOCHREALTIME/./}"
ctl="$RW/.vm-runs/$run_id"
mkdir -p "$ctl"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/jitguard-vm.XXXXXX")"
qpid= cpid= spid=
cleanup() {
  set +e
  [[ -n $qpid ]] && { disown "$qpid"; kill -KILL "$qpid"; } 2>/dev/null
  [[ -n $spid ]] && kill "$spid" 2>/dev/null
  [[ -n $cpid ]] && kill "$cpid" 2>/dev/null
  [[ ${JITGUARD_VM_KEEP:-0} == 1 ]] || rm -rf "$ctl"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "[vm] interrupted" >&2; exit 130' INT TERM HUP

printf '%s' "$RW" >"$ctl/rwpath"
printf '%s' "$HERE/guest.sh" >"$ctl/stage2"
printf '%s' "$PWD" >"$ctl/cwd"
printf '%s\0' "$@" >"$ctl/cmd"
# Environment passed to the command: a fixed list, every JITGUARD_* variable, and any names
# listed in JITGUARD_VM_PASSENV (space separated).
pass=(PATH HOME USER LOGNAME SHELL TERM LANG LANGUAGE TZ CI GITHUB_ACTIONS NODE_OPTIONS NODE_ENV
  NO_COLOR FORCE_COLOR NODE_DISABLE_COLORS DEBUG NODE_DEBUG UV_THREADPOOL_SIZE)
read -r -a extra <<<"${JITGUARD_VM_PASSENV:-}"
pass+=("${extra[@]}")
while IFS= read -r v; do pass+=("$v"); done < <(compgen -e | grep -E '^(JITGUARD_|LC_)' || true)
declare -A done_=()
: >"$ctl/env"
for v in "${pass[@]}"; do
  [[ -n ${done_[$v]:-} ]] && continue
  done_[$v]=1
  [[ -v $v ]] && printf '%s=%s\0' "$v" "${!v}" >>"$ctl/env"
done

# ---- qemu
q() { printf '%s' "${1//,/,,}"; } # qemu option values escape ',' as ',,'
mkfifo "$tmp/err.in" "$tmp/err.out"
cat "$tmp/err.out" >&2 &
cpid=$!

append="console=ttyS0 quiet loglevel=1 panic=-1 mitigations=off jitguard.run=$run_id"
[[ ${JITGUARD_VM_DEBUG:-0} == 1 ]] && append+=" loglevel=7 jitguard.debug=1"
append+=" ${JITGUARD_VM_APPEND:-}"
qemu=(qemu-system-x86_64
  -nodefaults -no-user-config -no-reboot
  -machine pc -accel "$ACCEL" -cpu "$CPU_MODEL" -smp "$CPUS" -m "$MEM"
  -display none -monitor none
  -serial stdio
  -chardev "pipe,id=err,path=$(q "$tmp/err")" -serial chardev:err
  -kernel "${JITGUARD_VM_KERNEL:-$KERNEL}" -initrd "$INITRD" -append "$append"
  -virtfs "local,path=/,mount_tag=hostroot,readonly=on,multidevs=remap,security_model=none"
  -virtfs "local,path=$(q "$RW"),mount_tag=vmrw,multidevs=remap,security_model=none"
  -virtfs "local,path=$(q "$MODDIR"),mount_tag=vmmods,readonly=on,multidevs=remap,security_model=none"
)
say "booting $KVER (accel=$ACCEL, cpus=$CPUS, mem=${MEM}M, timeout=${TIMEOUT}s)"
"${qemu[@]}" </dev/null &
qpid=$!
sleep "$TIMEOUT" </dev/null >/dev/null 2>&1 &
spid=$!

set +e
which=
wait -n -p which "$qpid" "$spid"
qrc=$?
set -e
timed_out=0
if [[ $which == "$spid" ]]; then
  spid=
  timed_out=1
  kill -TERM "$qpid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$qpid" 2>/dev/null || true
  wait "$qpid" 2>/dev/null || true
else
  kill "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  spid=
fi
qpid=
# let the stderr relay drain (it sees EOF once qemu has closed the fifo)
for _ in $(seq 20); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.05; done
t_end=$EPOCHREALTIME

timing() {
  local started boot="?" cmd="?"
  if [[ -f $ctl/started ]]; then
    started="$(stat -c '%.6Y' "$ctl/started")"
    boot="$(awk -v a="$t_setup" -v b="$started" 'BEGIN { printf "%.1f", b - a }')"
    if [[ -f $ctl/status ]]; then
      cmd="$(awk -v a="$started" -v b="$(stat -c '%.6Y' "$ctl/status")" 'BEGIN { printf "%.1f", b - a }')"
    fi
  fi
  awk -v s="$t0" -v u="$t_setup" -v e="$t_end" -v boot="$boot" -v cmd="$cmd" \
    'BEGIN { printf "setup %.1fs, boot %ss, command %ss, total %.1fs", u - s, boot, cmd, e - s }'
}

if ((timed_out)); then
  echo "[vm] TIMEOUT: command did not finish within ${TIMEOUT}s; qemu killed ($(timing))" >&2
  exit 124
fi
if [[ ! -f $ctl/status ]]; then
  echo "[vm] ERROR: VM did not report an exit status (qemu exited with $qrc; $(timing))" >&2
  exit 125
fi
rc="$(<"$ctl/status")"
[[ $rc =~ ^[0-9]+$ ]] || { echo "[vm] ERROR: bad exit status '$rc' from the VM" >&2; exit 125; }
say "exit status $rc ($(timing))"
exit "$rc"
