#!/bin/sh
# Stage 1 guest init: this file is /init of the busybox-static initramfs built by setup.sh.
# (Changing it changes the initramfs cache key; setup.sh rebuilds on the next run.)
#
#  - loads the modules listed in /modules/order (dependency order, resolved on the host);
#  - mounts the host's / (9p tag "hostroot", read-only) under a tmpfs overlay at /newroot;
#  - mounts the read-write 9p share (tag "vmrw" = <project>/.cache/vm-rw) at the same absolute
#    path inside the new root, and the kernel's module tree (tag "vmmods") at /lib/modules so
#    that modprobe and module autoloading work after the switch;
#  - mounts proc, sys, devtmpfs, devpts, /dev/shm, /tmp, /run, brings lo up;
#  - switch_root's into the overlay and execs stage 2 (test/kernel/vm/guest.sh, read live from
#    the host tree) with the run's control directory.
# Everything that needs a program is done here with busybox: every exec of a host binary over
# 9p costs ~0.1 s under TCG.
# Control directory = <rw share>/.vm-runs/<id>, <id> comes from the kernel command line
# (jitguard.run=<id>); it holds the files rwpath, stage2, env, cmd, cwd written by the host.
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
dmesg -n 1 2>/dev/null

fail() {
  echo "[vm-init] FATAL: $*" >&2
  sleep 1 # let the console drain; the host then reports the missing exit status
  poweroff -f
  echo o >/proc/sysrq-trigger || echo o >/newroot/proc/sysrq-trigger
  sleep 10
}

run_id= debug=0
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    jitguard.run=*) run_id="${arg#jitguard.run=}" ;;
    jitguard.debug=1) debug=1 ;;
  esac
done
t() { [ "$debug" = 1 ] && echo "[vm-init] $(cut -d' ' -f1 /proc/uptime /newroot/proc/uptime 2>/dev/null)s $*" >&2; return 0; }
t "stage 1 start"
[ -n "$run_id" ] || fail "no jitguard.run=<id> on the kernel command line"

while read -r m; do
  [ -n "$m" ] || continue
  insmod "/modules/$m" || fail "insmod $m failed"
  t "  insmod $m"
done </modules/order
t "modules loaded"

# msize 512000 is the largest the 6.1 virtio transport accepts (default 8 KiB is very slow).
P9OPTS=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$P9OPTS,ro,cache=loose" hostroot /lower || fail "mounting 9p hostroot failed"
mount -t tmpfs -o mode=0755 tmpfs /ovl || fail "tmpfs for overlay failed"
mkdir -p /ovl/upper /ovl/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/ovl/upper,workdir=/ovl/work /newroot \
  || fail "overlay mount failed"

mount -t 9p -o "$P9OPTS,rw" vmrw /rw || fail "mounting 9p vmrw failed"
ctl_rel=".vm-runs/$run_id"
[ -f "/rw/$ctl_rel/rwpath" ] || fail "control directory /rw/$ctl_rel missing"
rwpath="$(cat "/rw/$ctl_rel/rwpath")"
stage2="$(cat "/rw/$ctl_rel/stage2")"
mkdir -p "/newroot$rwpath" || fail "mkdir $rwpath in the overlay failed"
mount --move /rw "/newroot$rwpath" || fail "moving the rw share to $rwpath failed"

mkdir -p /newroot/lib/modules
mount -t 9p -o "$P9OPTS,ro,cache=loose" vmmods /newroot/lib/modules || fail "mounting 9p vmmods failed"

n=/newroot
# Fresh tmpfs on /tmp and /run, unless the project itself lives there (it would be hidden).
case "$rwpath/" in /tmp/*) ;; *) mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $n/tmp || fail "mount /tmp" ;; esac
case "$rwpath/" in /run/*) ;; *) mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs $n/run || fail "mount /run" ;; esac
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || fail "mount devpts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || fail "mount /dev/shm"
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
[ -e /dev/ptmx ] || ln -sfn pts/ptmx /dev/ptmx
for d in dev proc sys; do
  mount --move "/$d" "$n/$d" || fail "moving /$d failed"
done
hostname jitguard-vm
ip link set lo up || fail "ip link set lo up"
# Guest output goes to the host as-is: let the host's terminal (if any) do CR/LF translation.
stty -onlcr <$n/dev/ttyS0 2>/dev/null
stty -onlcr <$n/dev/ttyS1 2>/dev/null
t "mounts done"

exec switch_root $n /bin/bash "$stage2" "$rwpath/$ctl_rel"
fail "switch_root failed"
