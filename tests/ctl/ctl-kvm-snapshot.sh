#!/usr/bin/env bash
# VM snapshots on the KVM machine (docs/lifecycle.md): hvkit-os serving
# on its control socket gets a KVP value from the host, is saved with
# `hvkit ctl snapshot` (once with --resume, once staying paused), and the
# first hvkit run goes. `hvkit run --restore` then continues the VM in a
# new process, twice from the one file: the guest has its KVP value, is
# still connected (no new INITIATE_CONTACT), its heartbeat answers, the
# two copies are independent, and a shutdown powers it off (exit 0); with
# a disk and a NIC, the restored devices serve the guest's disk test and
# NIC self-test; under storage load, saved, killed and restored, the load
# goes on against its model. A
# truncated, corrupt or foreign file and another machine's options are
# refused naming what is wrong; the process partition cannot be saved.
# TAP; skipped without a usable /dev/kvm. Every wait is bounded (60 s).
# usage: ctl-kvm-snapshot.sh HVKIT
set -u
hvkit=$(realpath "$1")
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1

n=0
result() { # description, status (0 = ok), files to show on failure...
	n=$((n + 1))
	local what=$1 ok=$2
	shift 2
	if [ "$ok" = 0 ]; then
		echo "ok $n - $what"
	else
		echo "not ok $n - $what"
		for f in "$@"; do [ -f "$f" ] && sed "s|^|# $f: |" "$f"; done
	fi
}

# eventually CMD...: CMD until it succeeds, at most 600 times 0.1 s apart
# (60 s); its last status.
eventually() {
	for _ in $(seq 599); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

# start NAME ARGS...: hvkit run in the background with socket NAME.sock,
# its output in NAME.out; waits up to 60 s for KVP to be ready. Its pid
# in $pid.
start() {
	local name=$1
	shift
	"$hvkit" run --partition kvm --control "$name.sock" "$@" >"$name.out" 2>&1 &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 600); do
		kill -0 "$pid" 2>/dev/null || return 1
		"$hvkit" ctl "$name.sock" status >"$name.status" 2>/dev/null &&
			grep -q "kvp: ready" "$name.status" && return 0
		sleep 0.1
	done
	return 1
}

# finish PID: waits up to 60 s for it to end; its status in $status.
finish() {
	status=timeout
	for _ in $(seq 600); do
		if ! kill -0 "$1" 2>/dev/null; then
			wait "$1"
			status=$?
			return 0
		fi
		sleep 0.1
	done
	return 1
}

echo "1..12"
if ! start first; then
	if grep -q "no usable /dev/kvm" first.out; then
		for i in $(seq 12); do echo "ok $i # SKIP no usable /dev/kvm"; done
		exit 0
	fi
fi
first=$pid

ok=1
"$hvkit" ctl first.sock kvp set colour blue &&
	"$hvkit" ctl first.sock snapshot running.snap --resume >snap1.out &&
	grep -q "^saved $work/running.snap: .* the machine is running$" snap1.out &&
	! "$hvkit" ctl first.sock status | grep -q paused &&
	[ "$("$hvkit" ctl first.sock kvp get colour)" = blue ] && ok=0
result "snapshot --resume: saved, the VM runs on and answers" $ok snap1.out first.out

ok=1
"$hvkit" ctl first.sock snapshot paused.snap >snap2.out &&
	grep -q "the machine is paused$" snap2.out &&
	"$hvkit" ctl first.sock status | grep -q "^machine: kvm partition.*, paused$" &&
	[ ! -e paused.snap.partial ] && "$hvkit" ctl first.sock quit >/dev/null &&
	finish "$first" && ok=0
result "snapshot: saved whole, the VM stays paused; quit ends it" $ok snap2.out first.out

ok=1
if start second --restore paused.snap; then
	second=$pid
	"$hvkit" ctl --json second.sock status >second.json &&
		grep -q '"connects": 1' second.json &&
		grep -q "restored from paused.snap" second.out &&
		[ "$("$hvkit" ctl second.sock kvp get colour)" = blue ] &&
		grep -q "heartbeat: alive" second.status && ok=0
fi
result "restored: still connected, the KVP value kept, the heartbeat answers" $ok \
	second.out second.json second.status

ok=1
"$hvkit" ctl second.sock kvp set only second && start third --restore paused.snap && {
	third=$pid
	"$hvkit" ctl third.sock kvp get only 2>third.err
	[ $? = 1 ] && grep -q "not-found" third.err &&
		[ "$("$hvkit" ctl third.sock kvp get colour)" = blue ]
} && ok=0
result "restored twice from one file: two VMs, each its own" $ok third.out third.err

ok=1
"$hvkit" ctl second.sock shutdown >/dev/null && "$hvkit" ctl third.sock shutdown >/dev/null &&
	finish "$second" && [ "$status" = 0 ] && finish "$third" && [ "$status" = 0 ] &&
	grep -q "hvkit-os: power off, status 0" second.out && ok=0
result "the restored guests power off when asked (exit 0)" $ok second.out third.out

# With a disk and a NIC: saved with the controller's and the NIC's state
# (their work finished first), restored, and the restored devices carry
# the guest's disk test and NIC self-test (hvkit-os runs both again
# before it powers off).
disk_vm=(--disk path=d.img --net loopback
	--cmdline "hvkit.debug_exit hvkit.expect_hv hvkit.serve hvkit.disk_test hvkit.net_test")
truncate -s 16M d.img
booted() { # the guest's first disk test and self-test are over
	grep -q "hvkit-os: disk lun 0 verified" disk1.out &&
		grep -q "hvkit-os: nic 0: 8 frames sent, 8 came back intact" disk1.out
}
ok=1
if start disk1 "${disk_vm[@]}"; then
	d1=$pid
	eventually booted &&
		"$hvkit" ctl disk1.sock snapshot disk.snap >/dev/null &&
		"$hvkit" ctl disk1.sock quit >/dev/null && finish "$d1" &&
		start disk2 "${disk_vm[@]}" --restore disk.snap && {
		d2=$pid
		"$hvkit" ctl disk2.sock shutdown >/dev/null && finish "$d2" && [ "$status" = 0 ] &&
			[ "$(grep -c "hvkit-os: disk lun 0 verified" disk2.out)" = 1 ] &&
			[ "$(grep -c "8 frames sent, 8 came back intact" disk2.out)" = 1 ] &&
			! grep -q "booted" disk2.out
	} && ok=0
fi
result "with a disk and a NIC: the guest's disk I/O and frames through the restored devices" \
	$ok disk1.out disk2.out

# Under storage load (hvkit-os writes and reads back blocks against a
# model in its RAM while it serves): saved mid-load, the first hvkit
# killed, restored; the load goes on through the restored controller,
# every block read back as the model says, the guest's clock never back.
load_vm=(--disk path=load.img --cmdline "hvkit.debug_exit hvkit.expect_hv hvkit.serve hvkit.disk_load")
truncate -s 16M load.img
scsi_signals() { # the controller's guest signals so far, all its channels
	"$hvkit" ctl --json "$1" status 2>/dev/null | python3 -c '
import json, sys
print(sum(c["guest_signals"] for c in json.load(sys.stdin)["vmbus"]["channels"]
          if c["class"] == "scsi"))' 2>/dev/null || echo 0
}
loaded() { # the guest's load has signalled the controller past 20 times
	[ "$(scsi_signals "$1")" -gt 20 ]
}
ok=1
if start load1 "${load_vm[@]}"; then
	l1=$pid
	eventually loaded load1.sock &&
		"$hvkit" ctl load1.sock snapshot load.snap >/dev/null && kill -9 "$l1" &&
		start load2 "${load_vm[@]}" --restore load.snap && {
		l2=$pid
		eventually loaded load2.sock &&
			"$hvkit" ctl load2.sock shutdown >/dev/null && finish "$l2" &&
			[ "$status" = 0 ] &&
			grep -qE "disk load: [0-9]+ writes, [0-9]+ reads checked, 0 mismatches, 0 failures; the clock went back 0 times" load2.out
	} && ok=0
fi
result "under storage load: saved, killed, restored; the load checks out against its model" \
	$ok load2.out

ok=1
"$hvkit" run --partition kvm --timeout 30 --net loopback --restore disk.snap >refused.out 2>&1
[ $? = 70 ] && grep -q "has 1 disks, this one 0 (--disk)" refused.out && ok=0
result "that snapshot without its disk: refused, --disk named" $ok refused.out

# refused RUN_ARGS... -- PATTERN: hvkit run with RUN_ARGS exits 70 and
# says PATTERN.
refused() {
	local args=()
	while [ "$1" != -- ]; do
		args+=("$1")
		shift
	done
	"$hvkit" run --partition kvm --timeout 30 "${args[@]}" >refused.out 2>&1
	local rc=$?
	[ "$rc" = 70 ] && grep -q -- "$2" refused.out
}

ok=1
size=$(stat -c %s paused.snap)
head -c $((size / 2)) paused.snap >truncated.snap
cp paused.snap flipped.snap
printf '\xff' | dd of=flipped.snap bs=1 seek=$((size / 3)) conv=notrunc status=none
head -c 100 /dev/zero >zero.snap
refused --restore truncated.snap -- "truncated.snap: the file ends at byte" &&
	refused --restore flipped.snap -- "flipped.snap: .*memory section\|flipped.snap: a run of" &&
	refused --restore zero.snap -- "not an hvkit snapshot" &&
	refused --restore missing.snap -- "missing.snap: No such file" && ok=0
result "truncated, corrupt, foreign and missing files refused, named" $ok refused.out

ok=1
refused --restore paused.snap --cpus 1 -- "has 2 VPs, this one 1 (--cpus)" &&
	refused --restore paused.snap --memory 128M -- "(--memory)" &&
	refused --restore paused.snap --vm-id 6b1f3a52-9c1e-4d0e-8f61-5e0d7c2a9b44 -- "(--vm-id)" &&
	refused --restore paused.snap --no-ic -- "(--no-ic)" && ok=0
result "another machine's options refused, the option named" $ok refused.out

ok=1
"$hvkit" run --partition process --restore paused.snap >proc.out 2>&1
[ $? = 2 ] && grep -q "are for --partition kvm" proc.out && ok=0
result "--restore in the process partition: bad usage" $ok proc.out

ok=1
"$hvkit" run --partition process --control proc.sock >proc.out 2>&1 &
proc=$!
pids+=("$proc")
eventually "$hvkit" ctl proc.sock status >/dev/null 2>&1
"$hvkit" ctl proc.sock snapshot proc.snap 2>proc.err
[ $? = 1 ] && grep -q "the process partition cannot be saved" proc.err && [ ! -e proc.snap ] &&
	"$hvkit" ctl proc.sock quit >/dev/null && finish "$proc" && ok=0
result "the process partition cannot be saved" $ok proc.err proc.out
exit 0
