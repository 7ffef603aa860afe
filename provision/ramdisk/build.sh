#!/bin/bash
# build.sh makes the discovery/deploy ramdisk that bare-metal machines PXE-boot
# (see README.md): build/ramdisk/vmlinuz (Debian's kernel) and
# build/ramdisk/initramfs.zst (busybox, the NIC and disk modules, /init, and a
# static rack-agent built from this checkout). Like node/testimage/build.sh it
# needs no root tricks, and caches the downloaded .debs in build/.
#
# Usage: provision/ramdisk/build.sh [output dir]   (REBUILD=1 forces a build)
# Needs: apt-get, dpkg-deb, cpio, zstd, go — `make ramdisk` installs them.
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-$top/build/ramdisk}
cache=$top/build/ramdisk-cache

kernel_pkg=linux-image-6.1.0-56-amd64
kver=6.1.0-56-amd64
# The drivers the ramdisk carries, with their dependencies: virtio for QEMU
# guests, e1000 for QEMU's default PXE NIC, e1000e/igb and ahci/nvme for the
# commonest real servers. /init loads only those whose hardware is there
# (modules.alias, written by busybox's depmod here).
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
virtio_mmio failover net_failover virtio_net virtio_blk virtio_scsi
e1000 e1000e igb ahci sd_mod nvme"

mkdir -p "$cache" "$out"
exec 9>"$cache/lock"
flock 9

# Inputs: this script and the library it sources, /init, the DHCP hook, and the agent's Go sources
# (not its tests).
newest_input() {
	find "$here/build.sh" "$here/init" "$here/udhcpc.script" "$top/node/testimage/debs.sh" \
		"$top/cmd/rack-agent" "$top/provision/agent" "$top/provision/agentapi" "$top/node/inventory" \
		"$top/go.mod" -type f -newer "$1" -not -name '*_test.go' -not -path '*/testdata/*' -print -quit
}
if [ -z "${REBUILD:-}" ] && [ -f "$out/initramfs.zst" ] && [ -f "$out/vmlinuz" ]; then
	stale=$(newest_input "$out/initramfs.zst")
	if [ -z "$stale" ]; then
		echo "ramdisk: $out is up to date"
		exit 0
	fi
	echo "ramdisk: rebuilding, newer than the initramfs: ${stale#$top/}"
fi

for tool in apt-get dpkg-deb cpio zstd go; do
	command -v $tool >/dev/null || { echo "build.sh: $tool not found (run make ramdisk)" >&2; exit 1; }
done

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

mkdir -p "$cache/debs"
work=$(mktemp -d "$cache/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

label="ramdisk"
extra_debs="$top/build/testimage/debs" # reuse what make test-image downloaded
. "$top/node/testimage/debs.sh"

kernel_deb=$(fetch $kernel_pkg)
busybox_deb=$(fetch busybox-static)

extract_kernel "$kernel_deb"
kdir=$cache/kernel

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
mkdir -p "$rd/lib/modules/$kver"
cp "$kdir/modules/"*.ko "$rd/lib/modules/$kver/"
"$rd/bin/busybox" depmod -b "$rd" "$kver"
echo "root:x:0:0:root:/root:/bin/sh" >"$rd/etc/passwd"
echo "root:x:0:" >"$rd/etc/group"
printf '127.0.0.1\tlocalhost\n' >"$rd/etc/hosts"
# zstd, not gzip: every machine unpacks it with its (emulated, in tests) CPU
# at boot, and zstd -19 is both smaller (4.1 against 4.9 MB to download)
# and quicker to unpack (a TCG boot to /init: a median 8.0 CPU-s against
# 9.3 with gzip -9; provision/README.md).
(cd "$rd" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | zstd -19 -q >"$work/initramfs.zst"

# Replace both files only once both are built; the initramfs last, as its
# age is what the freshness check compares.
cp "$kdir/vmlinuz" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$work/initramfs.zst" "$out/initramfs.zst.tmp"
mv "$out/initramfs.zst.tmp" "$out/initramfs.zst"
echo "ramdisk: wrote $out (vmlinuz $(du -k "$out/vmlinuz" | cut -f1) KiB, initramfs.zst $(du -k "$out/initramfs.zst" | cut -f1) KiB)"
