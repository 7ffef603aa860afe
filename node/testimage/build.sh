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

inputs="$here/build.sh $here/init $here/udhcpc.script $here/json.awk $here/syslinux.cfg"
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

# fetch prints the cached .deb of package $1, downloading it first if needed
# (into a scratch directory, so an interrupted download is never cached).
fetch() {
	local pkg=$1 deb dl
	deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
	if [ -z "$deb" ]; then
		dl=$(mktemp -d "$work/dl.XXXXXX")
		if ! (cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "$pkg") >&2; then
			$sudo apt-get update -q >&2
			(cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "$pkg") >&2
		fi
		mv "$dl"/*.deb "$cache/debs/"
		deb=$(ls "$cache/debs/${pkg}_"*.deb | head -n 1)
	fi
	echo "$deb"
}

kernel_deb=$(fetch $kernel_pkg)
busybox_deb=$(fetch busybox-static)

# The kernel and the module closure, extracted once per .deb and module list
# (the whole package unpacks to 400 MB; we keep ~10 MB).
kdir=$cache/kernel
stamp="${kernel_deb##*/} $(echo $modules)"
if [ "$(cat "$kdir/stamp" 2>/dev/null)" != "$stamp" ]; then
	echo "test image: extracting ${kernel_deb##*/}"
	x=$work/kernel-deb
	dpkg-deb -x "$kernel_deb" "$x"
	rm -rf "$kdir.new"
	mkdir -p "$kdir.new/modules"
	cp "$x/boot/vmlinuz-$kver" "$kdir.new/vmlinuz"
	find "$x/lib/modules/$kver" -name '*.ko' >"$work/ko-list"
	order=""
	# add appends module $1 after its dependencies (module names use "_",
	# some files "-", as nls_iso8859-1.ko).
	add() {
		local m=$1 f d
		case " $order " in *" $m "*) return ;; esac
		f=$(grep -E "/${m//_/[_-]}\.ko$" "$work/ko-list" | head -n 1 || true)
		[ -n "$f" ] || { echo "build.sh: module $m not in $kernel_pkg" >&2; exit 1; }
		for d in $(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | tr ',' ' '); do
			add "$d"
		done
		order="$order $m"
		cp "$f" "$kdir.new/modules/$m.ko"
	}
	for m in $modules; do add "$m"; done
	echo $order | tr ' ' '\n' >"$kdir.new/order"
	echo "$stamp" >"$kdir.new/stamp"
	rm -rf "$kdir"
	mv "$kdir.new" "$kdir"
	rm -rf "$x"
fi

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
