#!/bin/sh
# Disk hot add and remove through the control socket: hvkit run --control
# with the storvsc test guest (its hotplug scenario) and one disk; hvkit
# ctl disk-add puts a second image at LUN 1, the guest rescans, writes
# 0x33 at LBA 1 of it, reads it back and marks LBA 2 done (0x44);
# disk-remove takes it away, the
# guest sees it gone and exits 0, and so does hvkit run.
set -eu
hvkit=$1
guest=$2
. "$(dirname "$0")/ctl_lib.sh"
start_run --guest "$guest" --disk "path=$dir/a.img" --cpus 1
wait_until "the control socket" test -S "$sock"
# Refusals first: a missing image, a LUN that is taken, nothing to remove.
if "$hvkit" ctl "$sock" disk-add path=/nonexistent/img >/dev/null 2>&1; then
	echo "a missing image was added" >&2; exit 1
fi
if "$hvkit" ctl "$sock" disk-add "path=$dir/b.img,lun=0" >/dev/null 2>&1; then
	echo "LUN 0 was added twice" >&2; exit 1
fi
if "$hvkit" ctl "$sock" disk-remove 9 >/dev/null 2>&1; then
	echo "LUN 9 was removed" >&2; exit 1
fi
if "$hvkit" ctl "$sock" disk-add "path=$dir/b.img,color=red" >/dev/null 2>&1; then
	echo "a bad option was accepted" >&2; exit 1
fi
out=$("$hvkit" ctl "$sock" disk-add "path=$dir/b.img")
echo "$out"
[ "$out" = "added disk at LUN 1" ]
# The guest writes 0x33 at LBA 1 of the new disk, reads it back, then
# writes its done marker, 0x44 at LBA 2.
byte_at() { od -An -tx1 -j "$1" -N 1 "$dir/b.img" | tr -d ' '; }
done_44() { [ "$(byte_at 1535)" = 44 ]; }
wait_until "the guest's write, read-back and done marker" done_44
[ "$(byte_at 1023)" = 33 ]
out=$("$hvkit" ctl "$sock" disk-remove 1)
echo "$out"
[ "$out" = "removed disk at LUN 1" ]
# The guest sees it gone and exits 0; hvkit run with it.
finish_run
grep -q "hotplug: ok" "$dir/run.out"
[ "$status" -eq 0 ]
echo ok
