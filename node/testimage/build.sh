#!/bin/bash
# build.sh makes build/test-image.qcow2, the small bootable guest that tests
# and the compute service's demo boot (see README.md), from Debian packages
# and without root tricks: no loop mounts, no mknod, no chroot. The kernel
# and busybox .debs are cached in build/testimage/, so a rebuild is quick.
#
# Usage: node/testimage/build.sh [output.qcow2]   (REBUILD=1 forces a build)
# Needs: apt-get, sfdisk, mkfs.vfat, mcopy, syslinux, qemu-img, cpio, gzip —
# `make test-image` installs them.
set -euo pipefail
shopt -s inherit_errexit
export MTOOLS_SKIP_CHECK=1

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-$top/build/test-image.qcow2}
cache=$top/build/testimage

kernel_pkg=linux-image-6.1.0-56-amd64
kver=6.1.0-56-amd64
# Loaded in this order by /init; dependencies are added in front of the first
# module that needs them. virtio_blk + isofs read a config drive attached as a
# virtio disk, fat/vfat/nls_* a vfat one; evdev + button let QEMU's
# system_powerdown reach /init.
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
virtio_mmio failover net_failover virtio_net virtio_blk
isofs fat vfat nls_cp437 nls_iso8859_1 nls_ascii nls_utf8 evdev button"
disk_mib=64

# Test packages may ask for the image in parallel: one build at a time, and
# the freshness check after the wait.
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9

inputs="$here/build.sh $here/debs.sh $here/init $here/udhcpc.script $here/json.awk $here/syslinux.cfg"
if [ -z "${REBUILD:-}" ] && [ -f "$out" ]; then
	stale=""
	for f in $inputs; do
		if [ "$f" -nt "$out" ]; then stale="$stale ${f##*/}"; fi
	done
	if [ -z "$stale" ]; then
		echo "test image: $out is up to date"
		exit 0
	fi
	echo "test image: rebuilding, newer than the image:$stale"
fi

for tool in apt-get dpkg-deb sfdisk mkfs.vfat mcopy syslinux qemu-img cpio gzip; do
	command -v $tool >/dev/null || { echo "build.sh: $tool not found (run make test-image)" >&2; exit 1; }
done
mbr=/usr/lib/syslinux/mbr/mbr.bin
[ -f $mbr ] || { echo "build.sh: $mbr not found (package syslinux-common)" >&2; exit 1; }

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

mkdir -p "$cache/debs"
work=$(mktemp -d "$cache/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

label="test image"
. "$top/node/testimage/debs.sh"

kernel_deb=$(fetch $kernel_pkg)
busybox_deb=$(fetch busybox-static)

extract_kernel "$kernel_deb"
kdir=$cache/kernel

# The initramfs: busybox, /init and its helpers, the modules.
rd=$work/initramfs
mkdir -p "$rd"/{bin,dev,proc,sys,run,tmp,etc,mnt,root,www,usr,lib/modules,lib/rackstack}
dpkg-deb -x "$busybox_deb" "$work/busybox-deb"
cp "$work/busybox-deb/bin/busybox" "$rd/bin/busybox"
for applet in $("$rd/bin/busybox" --list); do
	[ -e "$rd/bin/$applet" ] || ln -s busybox "$rd/bin/$applet"
done
ln -s bin "$rd/sbin"
ln -s ../bin "$rd/usr/bin"
ln -s ../bin "$rd/usr/sbin"
install -m 755 "$here/init" "$rd/init"
install -m 755 "$here/udhcpc.script" "$rd/etc/udhcpc.script"
install -m 644 "$here/json.awk" "$rd/lib/rackstack/json.awk"
cp "$kdir/modules/"*.ko "$kdir/order" "$rd/lib/modules/"
echo "root:x:0:0:root:/root:/bin/sh" >"$rd/etc/passwd"
echo "root:x:0:" >"$rd/etc/group"
printf '127.0.0.1\tlocalhost\n' >"$rd/etc/hosts"
(cd "$rd" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n >"$work/initrd.gz"

# The disk: an MBR with syslinux's boot code, one bootable FAT partition at
# 1 MiB holding syslinux, the kernel and the initramfs. mtools and syslinux
# write into the image file at an offset: nothing is mounted.
img=$work/disk.img
truncate -s ${disk_mib}M "$img"
printf 'label: dos\nstart=2048, type=c, bootable\n' | sfdisk -q "$img"
mkfs.vfat -n RACKSTACK --offset 2048 "$img" $(((disk_mib - 1) * 1024)) >/dev/null
mcopy -i "$img@@1048576" "$kdir/vmlinuz" ::/vmlinuz
mcopy -i "$img@@1048576" "$work/initrd.gz" ::/initrd.gz
mcopy -i "$img@@1048576" "$here/syslinux.cfg" ::/syslinux.cfg
syslinux --install --offset 1048576 "$img"
dd if=$mbr of="$img" bs=440 count=1 conv=notrunc status=none

mkdir -p "$(dirname "$out")"
tmp=$out.tmp.$$
trap 'rm -rf "$work" "$tmp"' EXIT
qemu-img convert -O qcow2 "$img" "$tmp"
mv "$tmp" "$out"
echo "test image: wrote $out ($(du -k "$out" | cut -f1) KiB; initramfs $(du -k "$work/initrd.gz" | cut -f1) KiB)"
