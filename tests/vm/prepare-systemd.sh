#!/usr/bin/env bash
# Prepares the systemd guest of the VM lab (tests/systemd_lab.rs): a Debian 12 (bookworm) root
# filesystem with systemd as PID 1, dbus and openssh-server, built with mmdebstrap and packed as
# one newc archive that the lab boots as an initramfs (the whole root file system in RAM).
# Idempotent; when cached, it only hashes its recipe.
#
#   bash tests/vm/prepare-systemd.sh [CACHE_DIR]      # default: target/vm-cache
#
# Leaves CACHE_DIR/systemd/rootfs-HASH.cpio and prints its path as the last line of stdout.
# HASH is the recipe's: this script and everything under tests/vm/systemd/image/, so a changed
# recipe builds a new image and an unchanged one is never rebuilt. Older images are removed.
# The kernels (tests/vm/prepare.sh) are not this script's business: the image has no kernel and
# no modules, and boots with the lab's 6.1 kernel, which has what systemd needs built in (autofs4
# is a module: systemd says it cannot find it and leaves the binfmt_misc automount out, which
# nothing here uses).
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
if [ -s "$out" ]; then
  echo "$out"
  exit 0
fi

# One build at a time: CI's setup and a test may both get here.
exec 9>"$cache/systemd/.lock"
flock 9
if [ -s "$out" ]; then
  echo "$out"
  exit 0
fi

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v cpio >/dev/null || need+=(cpio)
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
packages=systemd,systemd-sysv,dbus,openssh-server,procps,mawk
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
  --customize-hook='echo lab >"$1/etc/hostname"' \
  --customize-hook='chroot "$1" ssh-keygen -A >/dev/null' \
  --customize-hook='rm -rf "$1/var/cache/"* "$1/var/log/"*.log' \
  bookworm "$stage/root" >&2
# The kernel opens /dev/console before it runs init: it must be in the archive.
[ -e "$stage/root/dev/console" ] || mknod -m 600 "$stage/root/dev/console" c 5 1
[ -e "$stage/root/dev/null" ] || mknod -m 666 "$stage/root/dev/null" c 1 3
(cd "$stage/root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out.new"
mv "$out.new" "$out"
# Older recipes' images.
for old in "$cache/systemd"/rootfs-*.cpio; do
  [ "$old" = "$out" ] || rm -f "$old"
done
log "built in $(($(date +%s) - t0)) s: $(du -m "$out" | cut -f1) MiB"
echo "$out"
