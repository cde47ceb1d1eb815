#!/bin/sh
# hvkit run --net: the guest binds every NIC (netvsc), lists its MAC, MTU,
# link and channels, and sends self-test frames: a loopback NIC hands them
# all back intact, a sink NIC none. Every NIC channel is open on both sides.
set -eu
hvkit=$1
out=$("$hvkit" run --packets 10 --net loopback,mac=52:54:00:12:34:56 --net sink)
echo "$out"
expect() {
	echo "$out" | grep -q -- "$1" || { echo "missing: $1" >&2; exit 1; }
}
expect "^guest: nic 0: MAC 52:54:00:12:34:56, MTU 1500, link up, [1-9][0-9]* channel(s), NVSP 6.1$"
expect "^guest: nic 0: 8 frames sent, 8 came back intact, 0 damaged$"
expect "^guest: nic 1: MAC [0-9a-f:]*, MTU 1500, link up, [1-9][0-9]* channel(s), NVSP 6.1$"
expect "^guest: nic 1: 8 frames sent, none came back (not a loopback)$"
expect "^  nic .* open  *netvsc "
if echo "$out" | grep -q "^  nic .* \(offered\|opening\) "; then
	echo "a NIC channel was left unopened" >&2
	exit 1
fi
# The host's table, printed after the guest closed its channels (rows
# without a guest driver column), lists each NIC's primary: the
# sub-channels went with the primaries' close, as on Hyper-V.
[ "$(echo "$out" | grep "^  nic " | grep -vc netvsc)" -eq 2 ] ||
	{ echo "NIC channels missing on the host" >&2; exit 1; }
echo "ok"
