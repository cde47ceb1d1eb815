#!/bin/sh
# hvkit-guest (the default process guest) follows devices hot added and
# removed through the control socket while it serves: a disk added at
# LUN 1 is listed after its first block is read, its removal is seen; a
# loopback NIC added is brought up and its self-test frames come back,
# its removal is seen.
set -eu
hvkit=$1
dir=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
truncate -s 1M "$dir/a.img" "$dir/b.img"
sock=$dir/ctl.sock
"$hvkit" run --control "$sock" --packets 10 --disk "path=$dir/a.img" >"$dir/run.out" 2>&1 &
pid=$!
# Waits until the run's output has a line matching $1.
wait_for() {
	i=0
	until grep -q -- "$1" "$dir/run.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 300 ] || { cat "$dir/run.out"; echo "never saw: $1" >&2; exit 1; }
		sleep 0.1
	done
}
wait_for "^guest: serving until"
wait_for "^guest: disk 0:0: 1 MiB (2048 blocks of 512 bytes), read-write, serial 'hvkit-0', first block read$"
"$hvkit" ctl "$sock" disk-add "path=$dir/b.img,readonly=on"
wait_for "^guest: disk 0:1: 1 MiB (2048 blocks of 512 bytes), read-only, serial 'hvkit-1', first block read$"
"$hvkit" ctl "$sock" disk-remove 1
wait_for "^guest: disk 0:1 removed$"
"$hvkit" ctl "$sock" net-add "loopback,mac=52:54:00:00:00:07"
wait_for "^guest: nic 0: MAC 52:54:00:00:00:07, MTU 1500, link up, [1-9][0-9]* channel(s), NVSP 6.1$"
wait_for "^guest: nic 0: 8 frames sent, 8 came back intact, 0 damaged$"
"$hvkit" ctl "$sock" net-remove 0
wait_for "^guest: nic 0 removed$"
"$hvkit" ctl "$sock" quit
status=0
wait "$pid" || status=$?
pid=
cat "$dir/run.out"
[ "$status" -eq 0 ]
echo ok
