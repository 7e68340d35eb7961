#!/bin/bash
# Stage 2 guest init: runs as PID 1 inside the VM, in the overlay root (host / read-only +
# tmpfs), executed by the host's own bash after init.sh (stage 1) has mounted everything.
# It is read live from the host tree on every boot, so editing it needs no initramfs rebuild.
# It deliberately uses bash builtins only: every exec of a host binary over 9p costs ~0.1 s.
#
# $1 = control directory (inside the read-write share) written by run-in-vm.sh:
#   env     NUL-separated NAME=VALUE pairs: the command's whole environment
#   cmd     NUL-separated argv
#   cwd     working directory
# and written here:
#   started (created just before the command runs; its mtime is host time)
#   status  the command's exit status
ctl="$1"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

debug=0
[[ " $(</proc/cmdline) " == *" jitguard.debug=1 "* ]] && debug=1
t() { ((debug)) && echo "[vm-guest] $(</proc/uptime) $*" >&2; return 0; }
poweroff_now() {
  echo 0 >/proc/sys/kernel/printk # hide "reboot: Power down"
  # 9p writes are synchronous (no cache on the rw share) and the rest is tmpfs: no sync needed.
  # reboot(2) via the host's busybox-static; sysrq would print "sysrq: Power Off" regardless.
  /bin/busybox poweroff -f 2>/dev/null
  echo o >/proc/sysrq-trigger
  read -r -t 60 </dev/console
}
die() {
  echo "[vm-guest] FATAL: $*" >&2
  poweroff_now
}

# stdout stays on the console (ttyS0 -> host stdout); stderr goes to the second serial port
# (ttyS1), which the host relays to its own stderr.
[[ -c /dev/ttyS1 ]] && exec 2>/dev/ttyS1

t "stage 2 start"
mapfile -d '' envs <"$ctl/env" || die "reading $ctl/env"
mapfile -d '' cmd <"$ctl/cmd" || die "reading $ctl/cmd"
((${#cmd[@]})) || die "empty command"
cwd="$(<"$ctl/cwd")"

(
  # The command gets exactly the environment the host passed, nothing of PID 1's.
  for v in $(compgen -e); do unset "$v"; done
  for kv in "${envs[@]}"; do export "$kv"; done
  cd -- "$cwd" || {
    echo "[vm-guest] cannot cd to $cwd inside the VM (/tmp and /run are fresh tmpfs there)" >&2
    exit 125
  }
  t "running command"
  : >"$ctl/started"
  exec -- "${cmd[@]}"
) </dev/null
rc=$?

# A failed command may have lost a process the runner reports only as "test failed" (a
# segfault or the OOM killer print nothing to the test's output): say what the kernel saw.
if ((rc != 0)); then
  {
    echo "[vm-guest] command exited $rc; kernel messages about dying processes, and memory:"
    dmesg 2>/dev/null | grep -iE 'segfault|oom|killed process|traps:|general protection|out of memory' | tail -20
    free -m 2>/dev/null
    df -m /tmp / 2>/dev/null
  } >&2
fi

echo "$rc" >"$ctl/status"
poweroff_now
