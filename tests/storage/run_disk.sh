#!/bin/sh
# hvkit run --disk: the controller is offered next to the echo devices, the
# guest binds it and lists each disk (LUN, size, read-only, serial) after
# reading its first block; bad --disk options and missing images are
# refused.
set -eu
hvkit=$1
img=$(mktemp)
trap 'rm -f "$img"' EXIT
truncate -s 4M "$img"
out=$("$hvkit" run --packets 10 --disk "path=$img,serial=S1" --disk "path=$img,readonly=on")
echo "$out"
expect() {
	echo "$out" | grep -q -- "$1" || { echo "missing: $1" >&2; exit 1; }
}
expect "2 disk(s)"
expect "^  scsi "
# The guest binds the controller (storvsc) and reads each disk's first block.
expect "^  scsi .* open  *storvsc "
expect "^guest: scsi controller 0: VSTOR 6.2, [1-9][0-9]* channel(s), 2 disk(s)$"
expect "^guest: disk 0:0: 4 MiB (8192 blocks of 512 bytes), read-write, serial 'S1', first block read$"
expect "^guest: disk 0:1: 4 MiB (8192 blocks of 512 bytes), read-only, serial 'hvkit-1', first block read$"
if echo "$out" | grep -q "^  scsi .* offered "; then
	echo "a SCSI channel was left unopened" >&2
	exit 1
fi
for bad in "readonly=on" "path=$img,readonly=maybe" "path=$img,color=red" "path=/nonexistent/img"; do
	if "$hvkit" run --packets 1 --disk "$bad" >/dev/null 2>&1; then
		echo "accepted --disk $bad" >&2
		exit 1
	fi
done
echo "ok"
