#!/usr/bin/env bash
# Prepares the systemd guest of the VM lab (tests/systemd_lab.rs): a Debian 12 (bookworm) root
# filesystem with systemd as PID 1, dbus and openssh-server, built with mmdebstrap and packed as
# one newc archive that the lab boots as an initramfs (the whole root file system in RAM).
# Idempotent; when cached, it only hashes its recipe.
#
#   bash tests/vm/prepare-systemd.sh [CACHE_DIR]      # default: target/vm-cache
#
# Leaves CACHE_DIR/systemd/rootfs-HASH.cpio and prints its path as the last line of stdout, and
# beside it disk-HASH.img, the scratch disk scenarios with the header `#@ disk` get as /dev/vda
# (ext4, 2 GiB sparse: files/f0..f5 of 64 MiB each and ui.dat of 64 MiB, random data made on
# the host so that the guest spends no time writing them, and pg/, PostgreSQL unpacked; QEMU's
# snapshot=on discards writes).
# HASH is the recipe's: this script and everything under tests/vm/systemd/image/, so a changed
# recipe builds a new image and an unchanged one is never rebuilt. Older images are removed.
# The kernels (tests/vm/prepare.sh) are not this script's business: the image has no kernel and
# no modules, and boots with the lab's 6.1 kernel, which has what systemd needs built in (autofs4
# is a module: systemd says it cannot find it and leaves the binfmt_misc automount out, which
# nothing here uses). The few modules a scenario loads (zram, virtio_blk) are appended per run
# by the lab (tests/vm/lab.rs) from prepare.sh's extraction; kmod's depmod indexes them there.
# mmdebstrap's hooks below are shell snippets it runs with the root directory as $1: their
# single quotes are meant.
# shellcheck disable=SC2016
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${1:-$repo/target/vm-cache}"
mkdir -p "$cache/systemd"
cache="$(cd "$cache" && pwd)"
image_dir="$here/systemd/image"

log() { echo "vm/prepare-systemd: $*" >&2; }

# The recipe: this script and the files it copies into the image.
hash=$( (
  cd "$here"
  sha256sum prepare-systemd.sh
  find systemd/image -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
) | sha256sum | cut -c1-16)
out="$cache/systemd/rootfs-$hash.cpio"
disk="$cache/systemd/disk-$hash.img"
if [ -s "$out" ] && [ -s "$disk" ]; then
  echo "$out"
  exit 0
fi

# One build at a time: CI's setup and a test may both get here.
exec 9>"$cache/systemd/.lock"
flock 9
if [ -s "$out" ] && [ -s "$disk" ]; then
  echo "$out"
  exit 0
fi

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v cpio >/dev/null || need+=(cpio)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing ${need[*]} and not root: install them (apt-get install ${need[*]})"
    exit 1
  fi
  log "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if [ "$(id -u)" != 0 ]; then
  log "building the image needs root (mmdebstrap --mode=root, device nodes)"
  exit 1
fi

# What the guest runs: systemd as init, dbus and sshd (what a real host runs, protected by
# oomward's built-in rules, which system_short checks; logind needs the bus), procps (pgrep),
# mawk (the scenarios' awk). No udev: nothing in the scenarios waits for a device unit, and coldplugging costs seconds
# under software emulation. No apt: the scenarios install the package under test with dpkg -i.
# For the desktop scenario: the other OOM daemons as Debian packages them (earlyoom, nohang with
# its python3, systemd-oomd), each disabled and masked here so that no other scenario sees one
# (the scenario unmasks and enables the one it measures); dbus-user-session (the user bus that
# `systemd-run --user` and a desktop session use); kmod (modprobe, depmod) for zram and the
# scratch disk; util-linux is essential already (mkswap, swapon, zramctl, runuser).
packages=systemd,systemd-sysv,dbus,openssh-server,procps,mawk
packages=$packages,earlyoom,nohang,systemd-oomd,dbus-user-session,kmod
log "building $out (mmdebstrap bookworm: $packages)"
t0=$(date +%s)
stage="$(mktemp -d "$cache/systemd/stage.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
# The root file system lives in the guest's RAM: no documentation, man pages or translations
# (dpkg's path-exclude; copyright files kept). The exclusions apply while the image is built
# only: the customize hook removes them, so the package under test installs all its files.
mmdebstrap --mode=root --variant=essential --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --dpkgopt='path-exclude=/usr/share/zsh/*' \
  --customize-hook='rm -f "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap"' \
  --customize-hook="cp '$image_dir/lab-scenario.service' \"\$1/etc/systemd/system/\"" \
  --customize-hook='chroot "$1" systemctl enable lab-scenario.service ssh.service' \
  --customize-hook='chroot "$1" systemctl mask getty@tty1.service serial-getty@ttyS0.service systemd-firstboot.service' \
  --customize-hook='chroot "$1" systemctl set-default multi-user.target' \
  --customize-hook='chroot "$1" systemctl disable earlyoom.service nohang.service nohang-desktop.service systemd-oomd.service systemd-oomd.socket' \
  --customize-hook='chroot "$1" systemctl mask earlyoom.service nohang.service nohang-desktop.service systemd-oomd.service systemd-oomd.socket' \
  --customize-hook='echo "alice:x:1000:1000:Alice:/home/alice:/bin/sh" >>"$1/etc/passwd"' \
  --customize-hook='echo "alice:x:1000:" >>"$1/etc/group"' \
  --customize-hook='[ ! -e "$1/etc/shadow" ] || echo "alice:*:19000:0:99999:7:::" >>"$1/etc/shadow"' \
  --customize-hook='mkdir -p "$1/home/alice" && chown 1000:1000 "$1/home/alice" && chmod 700 "$1/home/alice"' \
  --customize-hook='mkdir -p "$1/var/lib/systemd/linger" && touch "$1/var/lib/systemd/linger/alice"' \
  --customize-hook='echo lab >"$1/etc/hostname"' \
  --customize-hook='chroot "$1" ssh-keygen -A >/dev/null' \
  --customize-hook='rm -rf "$1/var/cache/"* "$1/var/log/"*.log' \
  bookworm "$stage/root" >&2
# The kernel opens /dev/console before it runs init: it must be in the archive.
[ -e "$stage/root/dev/console" ] || mknod -m 600 "$stage/root/dev/console" c 5 1
[ -e "$stage/root/dev/null" ] || mknod -m 666 "$stage/root/dev/null" c 1 3
(cd "$stage/root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out.new"
mv "$out.new" "$out"
# The scratch disk: random data (so that nothing about it compresses or dedups), written on
# the host into a new ext4 (mke2fs -d) and used read-mostly by the guest.
log "building $disk"
mkdir -p "$stage/disk/files"
for i in 0 1 2 3 4 5; do
  head -c 64M /dev/urandom >"$stage/disk/files/f$i"
done
head -c 64M /dev/urandom >"$stage/disk/ui.dat"
# PostgreSQL for the postgres scenario: Debian 12's postgresql-15 and everything it links,
# unpacked (not installed) under pg/, run in place with LD_LIBRARY_PATH. On the disk rather
# than in the image, whose every byte sits in each guest's RAM.
mmdebstrap --mode=root --variant=extract --include=postgresql-15,postgresql-client-15 \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  bookworm "$stage/disk/pg" >&2
rm -f "$disk.new"
truncate -s 2G "$disk.new"
mkfs.ext4 -q -F -L lab -E lazy_itable_init=0,lazy_journal_init=0 -d "$stage/disk" "$disk.new"
mv "$disk.new" "$disk"
# Older recipes' images.
for old in "$cache/systemd"/rootfs-*.cpio "$cache/systemd"/disk-*.img; do
  [ "$old" = "$out" ] || [ "$old" = "$disk" ] || rm -f "$old"
done
log "built in $(($(date +%s) - t0)) s: $(du -m "$out" | cut -f1) MiB"
echo "$out"
