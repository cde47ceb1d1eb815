#!/bin/sh
# The executables are built hardened (meson.build): PIE, full RELRO
# (BIND_NOW), a non-executable stack, stack protector and, where the build
# fortifies, glibc's checked functions.
# usage: hardening.sh fortify|no-fortify EXECUTABLE...
set -eu
fortify=$1
shift
echo "1..$#"
n=0
for exe in "$@"; do
	n=$((n + 1))
	name=$(basename "$exe")
	why=""
	readelf -hW "$exe" | grep -q 'Type: *DYN' || why="$why not PIE;"
	readelf -dW "$exe" | grep -q 'FLAGS_1.*PIE' || why="$why no PIE flag;"
	readelf -dW "$exe" | grep -Eq 'BIND_NOW|FLAGS_1.*NOW' || why="$why no BIND_NOW;"
	readelf -lW "$exe" | grep -q 'GNU_RELRO' || why="$why no RELRO;"
	readelf -lW "$exe" | grep 'GNU_STACK' | grep -q 'RWE' && why="$why executable stack;"
	syms=$(nm -D "$exe")
	echo "$syms" | grep -q '__stack_chk_fail' || why="$why no stack protector;"
	if [ "$fortify" = fortify ]; then
		echo "$syms" | grep -q '_chk@' || why="$why not fortified;"
	fi
	if [ -z "$why" ]; then
		echo "ok $n - $name is hardened"
	else
		echo "not ok $n - $name:$why"
	fi
done
