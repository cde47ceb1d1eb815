#!/usr/bin/env bash
# Builds, or reuses, the Linux guest suite's kernel and prints the path of
# its vmlinux (a PVH ELF that `hvkit run --kernel` boots) on stdout;
# progress goes to stderr.
#
#   tests/linux-guest/build-kernel.sh CACHE_DIR
#
# The source is Debian's linux-source-6.1 package (installed with apt if
# missing), unpacked into CACHE_DIR/src with patches/*.patch applied: the
# PVM workarounds, all under arch/x86 (docs/linux-guest.md). The kernel is
# tinyconfig plus kernel.config, built in CACHE_DIR/obj. What is cached is
# redone only when its inputs change: the source when the tarball or a
# patch changes, the configuration when kernel.config changes; make itself
# does the rest, so a run with nothing changed takes seconds.
#
# Environment: LINUX_TARBALL (default /usr/src/linux-source-6.1.tar.xz),
# JOBS (make -j, default nproc), NO_APT=1 (install nothing).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 CACHE_DIR" >&2; exit 2; }
mkdir -p "$1"
cache=$(cd "$1" && pwd)
tarball=${LINUX_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
jobs=${JOBS:-$(nproc)}

log() { echo "build-kernel: $*" >&2; }
die() { log "$*"; exit 1; }

install_packages() {
	[ -z "${NO_APT:-}" ] || return 0
	local pkgs=(build-essential flex bison bc libelf-dev libssl-dev xz-utils) missing=()
	[ -n "${LINUX_TARBALL:-}" ] || pkgs+=(linux-source-6.1)
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	((${#missing[@]})) || return 0
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	log "installing ${missing[*]}"
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >&2
}

# The source, unpacked and patched; redone when the tarball or a patch
# changes (the stamp names both).
prepare_source() {
	local stamp
	stamp=$({ stat -L -c '%n %s %Y' "$tarball"; cat "$here"/patches/*.patch; } | sha256sum)
	stamp=${stamp%% *}
	[ "$(cat "$cache/src/.hvkit-stamp" 2>/dev/null)" != "$stamp" ] || return 0
	log "unpacking $tarball (about 1.5 GB) into $cache/src"
	rm -rf "$cache/src" "$cache/src.new" "$cache/obj"
	mkdir -p "$cache/src.new"
	tar -xJf "$tarball" -C "$cache/src.new" --strip-components=1
	for p in "$here"/patches/*.patch; do
		patch -d "$cache/src.new" -p1 --forward --batch --quiet <"$p" >&2 ||
			die "$(basename "$p") does not apply to $tarball (docs/linux-guest.md: updating the patches)"
	done
	echo "$stamp" >"$cache/src.new/.hvkit-stamp"
	mv "$cache/src.new" "$cache/src"
}

kmake() { make -C "$cache/src" O="$cache/obj" ARCH=x86_64 "$@"; }

# tinyconfig + kernel.config; redone when kernel.config changes. Every
# line of it must survive olddefconfig: a symbol that did not (a missing
# dependency, a rename in a later 6.1.y) fails the build.
configure() {
	local stamp
	stamp=$(sha256sum <"$here/kernel.config")
	stamp=${stamp%% *}
	mkdir -p "$cache/obj"
	[ ! -f "$cache/obj/.config" ] ||
		[ "$(cat "$cache/obj/.hvkit-config-stamp" 2>/dev/null)" != "$stamp" ] || return 0
	log "configuring: tinyconfig + kernel.config"
	rm -f "$cache/obj/.hvkit-config-stamp"
	local out=$cache/obj/config.log
	{
		kmake tinyconfig &&
			(cd "$cache/obj" && "$cache/src/scripts/kconfig/merge_config.sh" -m -O . .config \
				"$here/kernel.config") &&
			kmake olddefconfig
	} >"$out" 2>&1 || { cat "$out" >&2; die "configuration failed"; }
	local lost
	lost=$(sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=\(.*\)$/\1 \2/p' "$here/kernel.config" | awk '
		NR == FNR { want[$1] = $2; next }
		/^CONFIG_/ { i = index($0, "="); got[substr($0, 1, i - 1)] = substr($0, i + 1) }
		END { for (s in want) { g = (s in got) ? got[s] : "n"; if (g != want[s]) print s "=" want[s] " became " g } }
	' - "$cache/obj/.config")
	[ -z "$lost" ] || die "kernel.config lines that did not survive olddefconfig: $lost"
	echo "$stamp" >"$cache/obj/.hvkit-config-stamp"
}

install_packages
[ -f "$tarball" ] || die "no $tarball (apt-get install linux-source-6.1, or set LINUX_TARBALL)"
exec 9>"$cache/.lock"
flock 9
prepare_source
configure
start=$(date +%s)
log "building $(kmake -s kernelversion 2>/dev/null) with -j$jobs in $cache/obj"
kmake -s -j"$jobs" vmlinux >&2 || die "the kernel build failed"
log "vmlinux ready after $(($(date +%s) - start)) s"
echo "$cache/obj/vmlinux"
