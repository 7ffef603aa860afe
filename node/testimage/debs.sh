# debs.sh is sourced by the scripts that build guest disks and ramdisks
# from Debian packages (node/testimage/build.sh, provision/ramdisk/build.sh):
# fetching .debs into a cache and extracting a kernel with a module closure.
# The caller sets: cache (its cache dir), work (a scratch dir), sudo,
# kernel_pkg, kver, modules (names, in load order), and label (for messages);
# extra_debs may name another directory whose .debs are reused.

# fetch prints the cached .deb of package $1, downloading it first if needed
# (into a scratch directory, so an interrupted download is never cached).
fetch() {
	local pkg=$1 deb dl
	deb=$(ls "$cache/debs/${pkg}_"*.deb ${extra_debs:+"$extra_debs/${pkg}_"*.deb} 2>/dev/null | head -n 1 || true)
	if [ -z "$deb" ]; then
		mkdir -p "$cache/debs"
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

# extract_kernel unpacks the kernel of .deb $1 and the closure of $modules
# into $cache/kernel (vmlinuz, modules/*.ko, order: load order), once per
# .deb and module list (the whole package unpacks to 400 MB; we keep ~10 MB).
extract_kernel() {
	local kernel_deb=$1 kdir=$cache/kernel stamp x order m
	stamp="${kernel_deb##*/} $(echo $modules)"
	[ "$(cat "$kdir/stamp" 2>/dev/null)" != "$stamp" ] || return 0
	echo "$label: extracting ${kernel_deb##*/}"
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
		[ -n "$f" ] || { echo "$label: module $m not in $kernel_pkg" >&2; exit 1; }
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
}
