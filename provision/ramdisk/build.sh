#!/bin/bash
# build.sh makes the discovery/deploy ramdisk that bare-metal machines PXE-boot
# (see README.md): build/ramdisk/vmlinuz (Debian's kernel) and
# build/ramdisk/initramfs.gz (busybox, the NIC and disk modules, /init, and a
# static rack-agent built from this checkout). Like node/testimage/build.sh it
# needs no root tricks, and caches the downloaded .debs in build/.
#
# Usage: provision/ramdisk/build.sh [output dir]   (REBUILD=1 forces a build)
# Needs: apt-get, dpkg-deb, cpio, gzip, go — `make ramdisk` installs them.
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-$top/build/ramdisk}
cache=$top/build/ramdisk-cache

kernel_pkg=linux-image-6.1.0-56-amd64
kver=6.1.0-56-amd64
# Loaded in this order by /init; dependencies are added in front of the first
# module that needs them. virtio for QEMU guests, e1000 for QEMU's default
# PXE NIC, e1000e/igb and ahci/nvme for the commonest real servers.
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
virtio_mmio failover net_failover virtio_net virtio_blk virtio_scsi
e1000 e1000e igb ahci sd_mod nvme"

mkdir -p "$cache" "$out"
exec 9>"$cache/lock"
flock 9

# Inputs: this script, /init, the DHCP hook, and the agent's Go sources
# (not its tests).
newest_input() {
	find "$here/build.sh" "$here/init" "$here/udhcpc.script" \
		"$top/cmd/rack-agent" "$top/provision/agent" "$top/provision/agentapi" "$top/node/inventory" \
		"$top/go.mod" -type f -newer "$1" -not -name '*_test.go' -not -path '*/testdata/*' -print -quit
}
if [ -z "${REBUILD:-}" ] && [ -f "$out/initramfs.gz" ] && [ -f "$out/vmlinuz" ]; then
	stale=$(newest_input "$out/initramfs.gz")
	if [ -z "$stale" ]; then
		echo "ramdisk: $out is up to date"
		exit 0
	fi
	echo "ramdisk: rebuilding, newer than the initramfs: ${stale#$top/}"
fi

for tool in apt-get dpkg-deb cpio gzip go; do
	command -v $tool >/dev/null || { echo "build.sh: $tool not found (run make ramdisk)" >&2; exit 1; }
done

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

mkdir -p "$cache/debs"
work=$(mktemp -d "$cache/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# fetch prints the cached .deb of package $1 (reusing one make test-image
# downloaded), downloading it first if needed, into a scratch directory so an
# interrupted download is never cached.
fetch() {
	local pkg=$1 deb dl
	deb=$(ls "$cache/debs/${pkg}_"*.deb "$top/build/testimage/debs/${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
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

# The kernel and the module closure, extracted once per .deb and module list.
kdir=$cache/kernel
stamp="${kernel_deb##*/} $(echo $modules)"
if [ "$(cat "$kdir/stamp" 2>/dev/null)" != "$stamp" ]; then
	echo "ramdisk: extracting ${kernel_deb##*/}"
	x=$work/kernel-deb
	dpkg-deb -x "$kernel_deb" "$x"
	rm -rf "$kdir.new"
	mkdir -p "$kdir.new/modules"
	cp "$x/boot/vmlinuz-$kver" "$kdir.new/vmlinuz"
	find "$x/lib/modules/$kver" -name '*.ko' >"$work/ko-list"
	order=""
	# add appends module $1 after its dependencies.
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

# The agent: static, stripped, no cgo (the ramdisk has no libc).
echo "ramdisk: building rack-agent"
(cd "$top" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags "-s -w" -o "$work/rack-agent" ./cmd/rack-agent)

rd=$work/initramfs
mkdir -p "$rd"/{bin,dev,proc,sys,run,tmp,etc,root,usr,lib/modules}
dpkg-deb -x "$busybox_deb" "$work/busybox-deb"
cp "$work/busybox-deb/bin/busybox" "$rd/bin/busybox"
for applet in $("$rd/bin/busybox" --list); do
	[ -e "$rd/bin/$applet" ] || ln -s busybox "$rd/bin/$applet"
done
ln -s bin "$rd/sbin"
ln -s ../bin "$rd/usr/bin"
ln -s ../bin "$rd/usr/sbin"
install -m 755 "$work/rack-agent" "$rd/bin/rack-agent"
install -m 755 "$here/init" "$rd/init"
install -m 755 "$here/udhcpc.script" "$rd/etc/udhcpc.script"
cp "$kdir/modules/"*.ko "$kdir/order" "$rd/lib/modules/"
echo "root:x:0:0:root:/root:/bin/sh" >"$rd/etc/passwd"
echo "root:x:0:" >"$rd/etc/group"
printf '127.0.0.1\tlocalhost\n' >"$rd/etc/hosts"
(cd "$rd" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n >"$work/initramfs.gz"

# Replace both files only once both are built; the initramfs last, as its
# age is what the freshness check compares.
cp "$kdir/vmlinuz" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$work/initramfs.gz" "$out/initramfs.gz.tmp"
mv "$out/initramfs.gz.tmp" "$out/initramfs.gz"
echo "ramdisk: wrote $out (vmlinuz $(du -k "$out/vmlinuz" | cut -f1) KiB, initramfs.gz $(du -k "$out/initramfs.gz" | cut -f1) KiB)"
