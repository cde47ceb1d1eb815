#!/bin/sh
# hvkit-guest (the default process guest) follows devices hot added and
# removed through the control socket while it serves: a disk added at
# LUN 1 is listed after its first block is read, its removal is seen; a
# loopback NIC added is brought up and its self-test frames come back,
# its removal is seen.
set -eu
hvkit=$1
. "$(dirname "$0")/ctl_lib.sh"
start_run --packets 10 --disk "path=$dir/a.img"
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
finish_run
[ "$status" -eq 0 ]
echo ok
