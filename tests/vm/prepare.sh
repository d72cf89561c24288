#!/usr/bin/env bash
# Prepares the VM lab (tests/vm_lab.rs): installs QEMU and friends if missing, downloads and
# unpacks the Debian cloud kernels (without installing them), and builds one base initramfs per
# kernel (busybox-static with its applets, tests/vm/init.sh as /init, and the few modules the
# scenarios may load). Idempotent; a few stat calls when everything is cached.
#
#   bash tests/vm/prepare.sh [CACHE_DIR]      # default: target/vm-cache
#
# Leaves, per kernel NAME (6.12, 6.1), in CACHE_DIR/kernels/NAME/:
#   vmlinuz, config, release (uname -r), package (the .deb's name), initramfs.cpio (base, newc)
# and CACHE_DIR/disk.img: an empty 1 GiB ext4 image (sparse), which scenarios that declare
# `#@ disk` get as /dev/vda (QEMU snapshot=on: the image itself is never written).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${1:-$repo/target/vm-cache}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"

# NAME  META-PACKAGE (resolved to the concrete versioned package with apt-cache)
kernels=(
  "6.12 linux-image-6.12-cloud-amd64"
  "6.1 linux-image-cloud-amd64"
)
# Modules copied into each initramfs with their dependencies (what is built in is skipped):
# virtio_blk for a disk image, zram for swap.
modules=(virtio_blk virtio_pci zram lz4 lz4_compress lzo lzo-rle)

log() { echo "vm/prepare: $*" >&2; }

apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
}

# 1. Host tools.
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v xz >/dev/null || need+=(xz-utils)
command -v depmod >/dev/null || [ -x /sbin/depmod ] || need+=(kmod)
if [ ! -e "$cache/.busybox-static-ok" ] || [ ! -x /bin/busybox ]; then
  if [ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" != "install ok installed" ]; then
    need+=(busybox-static)
  fi
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing ${need[*]} and not root: install them (apt-get install ${need[*]})"
    exit 1
  fi
  apt_update
  log "apt-get install ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
busybox=/bin/busybox
if ! "$busybox" --list 2>/dev/null | grep -qx poweroff; then
  log "$busybox is not a usable busybox"
  exit 1
fi
touch "$cache/.busybox-static-ok"

# Copies module NAME (and what it depends on, first) from the unpacked tree $1 into $2,
# decompressing .ko.xz, and appends the trimmed modules.dep line.
copy_module() {
  local tree="$1" out="$2" name="$3" rel dep line
  line="$(grep -E "(^|/)${name//-/[-_]}\.ko(\.xz|\.zst)?:" "$tree/modules.dep" | head -n1 || true)"
  [ -n "$line" ] || return 0 # built in (or absent): nothing to load
  rel="${line%%:*}"
  local plain="${rel%.xz}"
  plain="${plain%.zst}"
  [ -e "$out/$plain" ] && return 0
  for dep in ${line#*:}; do
    dep="$(basename "$dep")"
    dep="${dep%%.ko*}"
    copy_module "$tree" "$out" "$dep"
  done
  mkdir -p "$out/$(dirname "$plain")"
  case "$rel" in
    *.xz) xz -dc "$tree/$rel" >"$out/$plain" ;;
    *.zst) zstd -qdc "$tree/$rel" >"$out/$plain" ;;
    *) cp "$tree/$rel" "$out/$plain" ;;
  esac
  local deps=""
  for dep in ${line#*:}; do
    deps="$deps ${dep%.xz}"
    deps="${deps%.zst}"
  done
  echo "$plain:$deps" >>"$out/modules.dep"
}

# 2. Kernels.
for entry in "${kernels[@]}"; do
  read -r name meta <<<"$entry"
  kdir="$cache/kernels/$name"
  if [ ! -s "$kdir/vmlinuz" ] || [ ! -s "$kdir/release" ] || [ ! -d "$kdir/modules" ]; then
    pkg="$(apt-cache depends "$meta" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ {print $2; exit}')"
    if [ -z "$pkg" ]; then
      apt_update
      pkg="$(apt-cache depends "$meta" | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ {print $2; exit}')"
    fi
    [ -n "$pkg" ] || { log "cannot resolve $meta to a kernel package"; exit 1; }
    log "kernel $name: $pkg"
    mkdir -p "$cache/debs"
    deb="$(ls "$cache/debs/${pkg}"_*.deb 2>/dev/null | head -n1 || true)"
    if [ -z "$deb" ]; then
      (cd "$cache/debs" && apt-get download -q "$pkg" 2>&1 | grep -v 'unsandboxed' >&2 || true)
      deb="$(ls "$cache/debs/${pkg}"_*.deb 2>/dev/null | head -n1 || true)"
      [ -n "$deb" ] || { log "apt-get download $pkg failed"; exit 1; }
    fi
    tmp="$(mktemp -d "$cache/unpack.XXXXXX")"
    dpkg-deb -x "$deb" "$tmp"
    release="$(ls "$tmp/lib/modules" | head -n1)"
    # The .deb has no modules.dep (made at install time): make it in the unpacked tree.
    PATH="$PATH:/sbin:/usr/sbin" depmod -b "$tmp" "$release"
    rm -rf "$kdir.new"
    mkdir -p "$kdir.new/modules/lib/modules/$release"
    cp "$tmp/boot/vmlinuz-$release" "$kdir.new/vmlinuz"
    cp "$tmp/boot/config-$release" "$kdir.new/config"
    : >"$kdir.new/modules/lib/modules/$release/modules.dep"
    for m in "${modules[@]}"; do
      copy_module "$tmp/lib/modules/$release" "$kdir.new/modules/lib/modules/$release" "$m"
    done
    echo "$release" >"$kdir.new/release"
    echo "$pkg" >"$kdir.new/package"
    rm -rf "$tmp" "$kdir"
    mv "$kdir.new" "$kdir"
  fi
done

# 3. One base initramfs per kernel: busybox + applets, /init, the kernel's modules.
for entry in "${kernels[@]}"; do
  read -r name _ <<<"$entry"
  kdir="$cache/kernels/$name"
  out="$kdir/initramfs.cpio"
  if [ -s "$out" ] && [ "$out" -nt "$here/init.sh" ] && [ "$out" -nt "$here/prepare.sh" ] \
    && [ "$out" -nt "$busybox" ] && [ "$out" -nt "$kdir/vmlinuz" ]; then
    continue
  fi
  log "initramfs for $name"
  stage="$(mktemp -d "$cache/stage.XXXXXX")"
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,root,lib}
  cp "$busybox" "$stage/bin/busybox"
  for applet in $("$busybox" --list-full); do
    [ -e "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
  done
  cp "$here/init.sh" "$stage/init"
  chmod 755 "$stage/init"
  cp -a "$kdir/modules/lib/." "$stage/lib/"
  mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
  mknod -m 666 "$stage/dev/null" c 1 3 2>/dev/null || true
  echo "root:x:0:0:root:/root:/bin/sh" >"$stage/etc/passwd"
  echo "root:x:0:" >"$stage/etc/group"
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out.new"
  mv "$out.new" "$out"
  rm -rf "$stage"
done

# 4. The scratch disk.
if [ ! -s "$cache/disk.img" ]; then
  log "disk image"
  rm -f "$cache/disk.img.new"
  truncate -s 1G "$cache/disk.img.new"
  mkfs.ext4 -q -F -L lab -E lazy_itable_init=0,lazy_journal_init=0 "$cache/disk.img.new"
  mv "$cache/disk.img.new" "$cache/disk.img"
fi

# 5. Debian's earlyoom for the side-by-side scenario: the packaged binary (downloaded, not
#    installed) with the shared libraries it links, as a newc archive the lab appends for
#    scenarios that declare `#@ earlyoom`.
if [ ! -s "$cache/earlyoom.cpio" ] || [ "$cache/earlyoom.cpio" -ot "$here/prepare.sh" ]; then
  mkdir -p "$cache/debs"
  deb="$(ls "$cache/debs/"earlyoom_*.deb 2>/dev/null | head -n1 || true)"
  if [ -z "$deb" ]; then
    apt_update
    (cd "$cache/debs" && apt-get download -q earlyoom 2>&1 | grep -v 'unsandboxed' >&2 || true)
    deb="$(ls "$cache/debs/"earlyoom_*.deb 2>/dev/null | head -n1 || true)"
    [ -n "$deb" ] || { log "apt-get download earlyoom failed"; exit 1; }
  fi
  log "earlyoom bundle from $(basename "$deb")"
  stage="$(mktemp -d "$cache/stage.XXXXXX")"
  dpkg-deb -x "$deb" "$stage/pkg"
  mkdir -p "$stage/root/usr/bin"
  cp "$stage/pkg/usr/bin/earlyoom" "$stage/root/usr/bin/earlyoom"
  # Every library ldd resolves (and the loader), at the path the binary asks for.
  for lib in $(ldd "$stage/pkg/usr/bin/earlyoom" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    mkdir -p "$stage/root$(dirname "$lib")"
    cp -L "$lib" "$stage/root$lib"
  done
  (cd "$stage/root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$cache/earlyoom.cpio.new"
  mv "$cache/earlyoom.cpio.new" "$cache/earlyoom.cpio"
  rm -rf "$stage"
fi
