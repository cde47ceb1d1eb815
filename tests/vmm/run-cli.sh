#!/usr/bin/env bash
# hvkit run's command line and exit statuses (--help lists them): a bad
# number is refused with exit 2 and a message that names the option; a
# file that cannot be used is named; --timeout ends with 124, a signal to
# a --control machine with 128 + the signal, hvkit's own failure with 70,
# a crash report with 8. TAP; the KVM case skips without a usable /dev/kvm.
set -u
hvkit=$1
dir=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

n=0
fail=0
result() { # description, condition status (0 = ok)
	n=$((n + 1))
	if [ "$2" = 0 ]; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		sed 's/^/# /' "$dir/err" "$dir/out" 2>/dev/null
		fail=1
	fi
}

# run EXPECTED_STATUS PATTERN_IN_STDERR ARGS...: hvkit run ARGS, in the
# process partition unless the arguments choose.
run() {
	local want=$1 pattern=$2
	shift 2
	HVKIT_KVM_DEVICE=/nonexistent "$hvkit" run "$@" >"$dir/out" 2>"$dir/err"
	local rc=$?
	[ "$rc" = "$want" ] && grep -q -- "$pattern" "$dir/err"
}

echo "1..13"
run 2 "--packets takes a whole number" --packets abc
result "--packets abc: exit 2, the option named" $?
run 2 "--packets takes a whole number" --packets -1
result "--packets -1: refused, not wrapped round" $?
run 2 "--cpus takes a whole number from 1 to 64, not '3x'" --cpus 3x
result "--cpus 3x: refused with the range" $?
run 2 "--memory takes a size" --memory 12Q
result "--memory 12Q: refused" $?
run 2 "--timeout" --timeout 1e3
result "--timeout 1e3: refused" $?
run 2 "--ic heartbeat= takes seconds" --ic heartbeat=0
result "--ic heartbeat=0: refused" $?
run 2 "--copy-dir $dir/none: No such file" --copy-dir "$dir/none"
result "--copy-dir that does not exist: named" $?
long=$(printf 'x%.0s' $(seq 5000))
run 2 "--guest: the path is longer" --guest "/$long"
result "--guest longer than a path: refused, not truncated" $?
run 70 "--disk $dir/none.img: No such file" --disk "path=$dir/none.img"
result "--disk that does not exist: exit 70, the file named" $?

# --timeout on a machine that would serve forever: 124, as timeout(1).
run 124 "did not finish in 1 s" --partition process --control "$dir/t.sock" --timeout 1
result "--timeout: exit 124" $?

# A signal to a --control machine: 128 + the signal.
HVKIT_KVM_DEVICE=/nonexistent "$hvkit" run --partition process --control "$dir/s.sock" \
	>"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 600); do [ -S "$dir/s.sock" ] && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" = 143 ]
result "SIGTERM to a --control machine: exit 143" $?

# The help lists the statuses.
"$hvkit" run --help >"$dir/out" 2>"$dir/err"
grep -q "124 --timeout passed" "$dir/out" && grep -q "8 the" "$dir/out"
result "--help lists the exit statuses" $?

# hvkit-os reports a crash through the crash MSRs: the VM stops, exit 8.
if "$hvkit" run --cmdline "hvkit.expect_hv hvkit.no_vmbus" --timeout 60 >/dev/null 2>&1; then
	"$hvkit" run --cmdline "hvkit.debug_exit hvkit.expect_hv hvkit.crash" --timeout 60 \
		>"$dir/out" 2>"$dir/err"
	rc=$?
	[ "$rc" = 8 ] && grep -q "crash test (hvkit.crash)" "$dir/err" "$dir/out"
	result "a crash report (crash MSRs) ends the VM with exit 8" $?
else
	n=$((n + 1))
	echo "ok $n # SKIP no usable /dev/kvm"
fi
exit $fail
