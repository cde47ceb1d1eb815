#!/bin/sh
# The control socket on the KVM machine: `hvkit run --partition kvm
# --control SOCK` boots hvkit-os (which then serves until asked to shut
# down); `hvkit ctl` sees the machine, its channels and a live heartbeat,
# sets and reads back a KVP item, pauses and resumes the VPs (the guest
# answers KVP again after), and shuts the guest down; hvkit run then
# exits 0 and leaves no socket behind. Then a guest that reports a crash
# under --on-crash pause stays paused, its report in `hvkit ctl status`,
# and `hvkit ctl quit` ends hvkit with the crash status 8. TAP; skipped
# without a usable /dev/kvm. Every wait is bounded (60 s).
# usage: ctl-kvm.sh HVKIT
hvkit="$1"
echo "1..7"
work=$(mktemp -d)
sock="$work/vm.sock"
pid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

result() { # number, description, 0 = ok
	if [ "$3" = 0 ]; then
		echo "ok $1 - $2"
	else
		echo "not ok $1 - $2"
	fi
}

"$hvkit" run --partition kvm --control "$sock" --timeout 120 >"$work/run.out" 2>&1 &
pid=$!

# Up to 60 s for the heartbeat to come alive and KVP to open (or for
# hvkit to give up).
alive=1
i=0
while [ $i -lt 600 ]; do
	if ! kill -0 "$pid" 2>/dev/null; then
		break
	fi
	if "$hvkit" ctl "$sock" status >"$work/status" 2>/dev/null &&
		grep -q "heartbeat: alive" "$work/status" && grep -q "kvp: ready" "$work/status"; then
		alive=0
		break
	fi
	sleep 0.1
	i=$((i + 1))
done
if grep -q "run: no usable /dev/kvm" "$work/run.out"; then
	pid=
	for i in 1 2 3 4 5 6 7; do echo "ok $i # SKIP no usable /dev/kvm"; done
	exit 0
fi

ok=1
[ $alive = 0 ] && grep -q "^machine: kvm partition, 2 VPs, 64 MiB" "$work/status" &&
	grep -q "^vmbus: connected 5.3" "$work/status" &&
	grep -qE "^  heartbeat .* open" "$work/status" && ok=0
result 1 "status: KVM machine, VMBus connected, heartbeat alive, KVP ready" $ok
[ $ok = 0 ] || sed 's/^/# /' "$work/status" "$work/run.out"

ok=1
"$hvkit" ctl "$sock" kvp set colour blue &&
	[ "$("$hvkit" ctl "$sock" kvp get colour)" = blue ] &&
	"$hvkit" ctl "$sock" kvp delete colour &&
	{
		# Gone: the guest's answer is "not found" (exit 1), not some
		# other failure.
		"$hvkit" ctl "$sock" kvp get colour 2>"$work/get.err"
		[ $? = 1 ] && grep -q "(not-found)" "$work/get.err"
	} && ok=0
result 2 "kvp set, get, delete against hvkit-os" $ok

ok=1
"$hvkit" ctl "$sock" pause >/dev/null &&
	"$hvkit" ctl "$sock" status | grep -q "^machine: kvm partition.*, paused$" &&
	{
		"$hvkit" ctl "$sock" pause 2>"$work/pause.err"
		[ $? = 1 ] && grep -q "paused already" "$work/pause.err"
	} && "$hvkit" ctl "$sock" resume >/dev/null &&
	! "$hvkit" ctl "$sock" status | grep -q "paused" &&
	{
		"$hvkit" ctl "$sock" resume 2>"$work/resume.err"
		[ $? = 1 ] && grep -q "not paused" "$work/resume.err"
	} && ok=0
result 3 "pause, then resume; a second of each refused" $ok

ok=1
"$hvkit" ctl "$sock" kvp set after pause && [ "$("$hvkit" ctl "$sock" kvp get after)" = pause ] &&
	ok=0
result 4 "the guest runs on after the resume (KVP answered)" $ok

ok=1
"$hvkit" ctl "$sock" shutdown >"$work/shutdown" 2>&1 && ok=0
result 5 "shutdown is accepted" $ok

# hvkit run ends by itself once the guest powers off.
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
ok=1
if ! kill -0 "$pid" 2>/dev/null; then
	wait "$pid"
	status=$?
	pid=
	[ $status = 0 ] && grep -q "hvkit-os: power off, status 0" "$work/run.out" &&
		[ ! -e "$sock" ] && ok=0
fi
result 6 "the guest powers off; hvkit run exits 0 and removes the socket" $ok
[ $ok = 0 ] || sed 's/^/# /' "$work/run.out"

# A crash report pauses the VM for inspection (--on-crash pause).
"$hvkit" run --partition kvm --control "$sock" --on-crash pause \
	--cmdline "hvkit.debug_exit hvkit.expect_hv hvkit.crash" >"$work/crash.out" 2>&1 &
pid=$!
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 600 ]; do
	"$hvkit" ctl "$sock" status >"$work/status" 2>/dev/null && grep -q "^crash:" "$work/status" &&
		break
	sleep 0.1
	i=$((i + 1))
done
ok=1
grep -q "^machine: kvm partition.*, paused$" "$work/status" &&
	# P3 and P4 are where the message is and its length (34 bytes).
	grep -qE "^crash: VP 0, P0-P4 0xc0ffee 0x1 0x2 0x[0-9a-f]+ 0x22$" "$work/status" &&
	grep -q "^  hvkit-os: crash test (hvkit.crash)$" "$work/status" &&
	"$hvkit" ctl "$sock" quit >/dev/null && {
	wait "$pid"
	status=$?
	pid=
	[ $status = 8 ]
} && ok=0
result 7 "--on-crash pause: paused, the report in ctl status, quit exits 8" $ok
[ $ok = 0 ] || sed 's/^/# /' "$work/status" "$work/crash.out"
exit 0
