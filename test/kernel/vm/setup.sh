#!/usr/bin/env bash
# Prepare everything test/kernel/vm/run-in-vm.sh needs to boot a Debian stock kernel
# (which carries wireguard.ko) under qemu:
#   1. host packages (qemu, busybox-static, kmod, wireguard-tools, ...), via apt if missing;
#   2. the CURRENT Debian kernel (whatever linux-image-amd64 depends on), unpacked into
#      <project>/.cache/vm/kernel/<package>_<version>/ and depmod'ed;
#   3. a busybox-static initramfs holding the modules needed to mount the 9p root, plus
#      wireguard, veth, tun, overlay and everything modprobe says they depend on.
# Idempotent and non-interactive; when everything is cached it only prints one line.
# Writes <project>/.cache/vm/current.env for run-in-vm.sh to source.
# All messages go to stderr (stdout of run-in-vm.sh belongs to the guest command).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT="$(cd "$HERE/../../.." && pwd)"
CACHE="$PROJECT/.cache/vm"
RW="$PROJECT/.cache/vm-rw"

# Modules the guest loads at boot (dependencies are resolved with modprobe --show-depends).
# Order matters only in that the 9p/overlay stack must be there to mount the root.
BOOT_MODULES=(virtio_pci 9pnet_virtio 9p overlay wireguard veth tun)
HOST_PACKAGES=(qemu-system-x86 busybox-static cpio kmod xz-utils wireguard-tools iproute2 libcap2-bin)

log() { printf '[vm-setup] %s\n' "$*" >&2; }
die() { printf '[vm-setup] ERROR: %s\n' "$*" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
apt_updated=0
apt_update() { # at most once per run; returns non-zero (without exiting) when it fails
  [[ $apt_updated == 0 ]] || return "$((apt_updated == 1 ? 0 : 1))"
  apt_updated=2
  [[ $(id -u) == 0 ]] || { log "apt-get update needed but not running as root"; return 1; }
  log "apt-get update"
  apt-get "${APT_OPTS[@]}" update -qq >&2 || { log "WARNING: apt-get update failed"; return 1; }
  apt_updated=1
}

# ---- 1. host packages -------------------------------------------------------------------
missing=()
for p in "${HOST_PACKAGES[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || die "missing packages (${missing[*]}) and not root; install them first"
  log "installing: ${missing[*]}"
  if ! apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2; then
    apt_update || die "apt-get update failed"
    apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2 \
      || die "apt-get install ${missing[*]} failed"
  fi
fi

# ---- 2. kernel ----------------------------------------------------------------------------
kernel_pkg() { # name of the package linux-image-amd64 currently depends on
  apt-cache depends linux-image-amd64 2>/dev/null \
    | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
mkdir -p "$CACHE/kernel" "$RW"
# Serialise concurrent setups (two run-in-vm.sh at once); the lock is released on exit.
exec 9>"$CACHE/.setup.lock"
flock 9

# apt-cache takes ~0.7 s per call when apt's binary cache is disabled (Docker images), so the
# resolution is remembered until apt's package lists change.
lists_fp="$(stat -c '%n %s %Y' /var/lib/apt/lists/*Packages* /var/lib/apt/lists/*Release 2>/dev/null | sha256sum | cut -c1-16)"
kpkg= kver_pkg=
if [[ -f $CACHE/kernel/resolved ]]; then
  read -r fp kpkg kver_pkg <"$CACHE/kernel/resolved" || true
  [[ $fp == "$lists_fp" ]] || kpkg=
fi
if [[ -z $kpkg || -z $kver_pkg ]]; then
  kpkg="$(kernel_pkg || true)"
  if [[ -z $kpkg ]]; then
    apt_update || die "apt-get update failed"
    lists_fp=none
    kpkg="$(kernel_pkg || true)"
  fi
  [[ -n $kpkg ]] || die "cannot resolve the kernel package from linux-image-amd64's dependencies"
  kver_pkg="$(apt-cache policy "$kpkg" | awk '$1 == "Candidate:" { print $2; exit }')"
  [[ -n $kver_pkg && $kver_pkg != "(none)" ]] || die "no candidate version for $kpkg"
  echo "$lists_fp $kpkg $kver_pkg" >"$CACHE/kernel/resolved"
fi
kdir="$CACHE/kernel/${kpkg}_${kver_pkg}"
if [[ ! -f $kdir/.done ]]; then
  tmp="$(mktemp -d "$CACHE/kernel/.dl.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  log "downloading $kpkg ($kver_pkg)"
  # apt-get download drops privileges to _apt; a root-owned cache dir would only produce a warning.
  if ! (cd "$tmp" && apt-get "${APT_OPTS[@]}" download -qq "$kpkg=$kver_pkg" >&2 2>/dev/null); then
    apt_update || true # stale lists are the usual cause; offline falls back to the cache below
    kpkg="$(kernel_pkg)"
    kver_pkg="$(apt-cache policy "$kpkg" | awk '$1 == "Candidate:" { print $2; exit }')"
    kdir="$CACHE/kernel/${kpkg}_${kver_pkg}"
    if [[ ! -f $kdir/.done ]]; then
      (cd "$tmp" && apt-get "${APT_OPTS[@]}" download -qq "$kpkg=$kver_pkg" >&2) || {
        # Offline fallback: reuse the newest kernel already unpacked, if any.
        prev="$(ls -1d "$CACHE"/kernel/linux-image-*/.done 2>/dev/null | sort -V | tail -n1 || true)"
        [[ -n $prev ]] || die "apt-get download $kpkg failed and no cached kernel exists"
        kdir="$(dirname "$prev")"
        log "WARNING: download failed; using cached $(basename "$kdir")"
      }
    fi
  fi
  if [[ ! -f $kdir/.done ]]; then
    deb="$(ls "$tmp"/*.deb)"
    log "unpacking $(basename "$deb")"
    rm -rf "$kdir"
    mkdir -p "$tmp/x"
    dpkg-deb -x "$deb" "$tmp/x"
    rm -rf "$tmp/x/usr" # docs only
    mv "$tmp/x" "$kdir"
    kv="$(ls "$kdir/lib/modules")"
    log "depmod $kv"
    depmod -b "$kdir" "$kv"
    touch "$kdir/.done"
    # keep this kernel and the previous one (a concurrent run may still be booting it)
    ls -1dt "$CACHE"/kernel/linux-image-*/ 2>/dev/null | tail -n +3 | while read -r old; do
      log "removing old kernel $(basename "$old")"
      rm -rf "$old"
    done
  fi
  rm -rf "$tmp"
  trap - EXIT
fi
KVER="$(ls "$kdir/lib/modules")"
[[ $(wc -w <<<"$KVER") == 1 ]] || die "expected one module tree in $kdir/lib/modules, got: $KVER"
VMLINUZ="$kdir/boot/vmlinuz-$KVER"
MODDIR="$kdir/lib/modules"
[[ -f $VMLINUZ ]] || die "missing $VMLINUZ"
# Booting the compressed bzImage costs ~3.5 s under TCG (firmware + xz decompression in the
# guest). When the kernel has CONFIG_PVH, qemu can boot the uncompressed ELF vmlinux directly
# through its PVH entry point instead: extract it once from the bzImage.
KERNEL="$VMLINUZ"
if grep -qx 'CONFIG_PVH=y' "$kdir/boot/config-$KVER" 2>/dev/null; then
  VMLINUX="$kdir/boot/vmlinux-$KVER"
  if [[ ! -f $VMLINUX ]]; then
    # payload = first compressed stream inside the bzImage (Debian uses xz; zstd/gzip handled too)
    for fmt in xz zstd gzip; do
      case $fmt in
        xz) magic=$'\xfd7zXZ\x00'; dec=(xz -dc --single-stream) ;;
        zstd) magic=$'\x28\xb5\x2f\xfd'; dec=(zstd -dcq) ;;
        gzip) magic=$'\x1f\x8b\x08'; dec=(gzip -dc) ;;
      esac
      command -v "${dec[0]}" >/dev/null || continue
      off="$(LC_ALL=C grep -abo -m1 "$magic" "$VMLINUZ" 2>/dev/null | head -n1 | cut -d: -f1 || true)"
      [[ -n $off ]] || continue
      tail -c +"$((off + 1))" "$VMLINUZ" | "${dec[@]}" >"$VMLINUX.tmp" 2>/dev/null || true
      if [[ "$(head -c4 "$VMLINUX.tmp" 2>/dev/null)" == $'\x7fELF' ]]; then
        mv "$VMLINUX.tmp" "$VMLINUX"
        log "extracted uncompressed vmlinux ($fmt) for PVH boot"
        break
      fi
    done
    rm -f "$VMLINUX.tmp"
  fi
  [[ -f $VMLINUX ]] && KERNEL="$VMLINUX"
fi

# ---- 3. initramfs -------------------------------------------------------------------------
BUSYBOX="$(command -v busybox || true)"
[[ -n $BUSYBOX ]] || die "busybox not found"
INITRD_LAYOUT=1 # bump when the build below changes
key="$( {
  echo "$INITRD_LAYOUT $kdir"
  cat "$HERE/init.sh"
  echo "${BOOT_MODULES[*]}"
  sha256sum "$BUSYBOX"
} | sha256sum | cut -c1-16)"
INITRD="$CACHE/initramfs-$KVER-$key.cpio"

if [[ ! -f $INITRD ]]; then
  log "building initramfs for $KVER"
  stage="$(mktemp -d "$CACHE/.initramfs.XXXXXX")"
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage"/{bin,dev,proc,sys,lower,ovl,newroot,rw,mods,modules}
  cp "$BUSYBOX" "$stage/bin/busybox"
  ln -s busybox "$stage/bin/sh"
  install -m 0755 "$HERE/init.sh" "$stage/init"
  : >"$stage/modules/order"
  declare -A seen=()
  for m in "${BOOT_MODULES[@]}"; do
    deps="$(modprobe -d "$kdir" -S "$KVER" --show-depends "$m")" || die "modprobe cannot resolve $m"
    while read -r kind path _; do
      [[ $kind == insmod ]] || continue # "builtin X" lines need nothing
      [[ -n ${seen[$path]:-} ]] && continue
      seen[$path]=1
      b="$(basename "$path")"
      cp "$path" "$stage/modules/$b"
      echo "$b" >>"$stage/modules/order"
    done <<<"$deps"
  done
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  log "initramfs: $(du -h "$INITRD" | cut -f1), modules: $(tr '\n' ' ' <"$stage/modules/order")"
  # drop initramfs images built for older inputs (keeping a few: a concurrent run may have
  # just read the previous name from current.env)
  ls -1t "$CACHE"/initramfs-*.cpio 2>/dev/null | tail -n +4 | while read -r old; do rm -f "$old"; done
  rm -rf "$stage"
  trap - EXIT
fi

cat >"$CACHE/current.env.tmp" <<EOF
KVER=$(printf '%q' "$KVER")
VMLINUZ=$(printf '%q' "$VMLINUZ")
KERNEL=$(printf '%q' "$KERNEL")
INITRD=$(printf '%q' "$INITRD")
MODDIR=$(printf '%q' "$MODDIR")
EOF
mv "$CACHE/current.env.tmp" "$CACHE/current.env"
log "ready: kernel $KVER ($(basename "$kdir")), initramfs $(basename "$INITRD")"
