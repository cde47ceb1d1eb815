#!/usr/bin/env bash
# hvkit run's command line and exit statuses (--help lists them): a bad
# number is refused with exit 2 and a message that names the option; a
# file that cannot be used is named; --timeout ends with 124, a signal to
# a --control machine with 128 + the signal, hvkit's own failure with 70,
# a crash report with 8. Options only a KVM machine has make it a KVM run,
# so without a usable /dev/kvm (HVKIT_KVM_DEVICE=/nonexistent) they fail
# clearly instead of quietly running the process partition; --serial unix:
# never takes over or removes a socket another process listens on. TAP;
# the crash case skips without a usable /dev/kvm.
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

# run EXPECTED_STATUS PATTERN_IN_STDERR ARGS...: hvkit run ARGS without a
# usable /dev/kvm (so in the process partition unless the options ask for
# KVM).
run() {
	local want=$1 pattern=$2
	shift 2
	HVKIT_KVM_DEVICE=/nonexistent "$hvkit" run "$@" >"$dir/out" 2>"$dir/err"
	local rc=$?
	[ "$rc" = "$want" ] && grep -q -- "$pattern" "$dir/err"
}

# A KVM-only option without /dev/kvm: exit 70, "need /dev/kvm", and no
# quiet switch to the process partition.
refused() {
	run 70 "need /dev/kvm" --timeout 20 "$@" && ! grep -q "process partition" "$dir/out"
}

echo "1..25"
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
run 2 "--on-crash takes stop or pause, not 'halt'" --on-crash halt
result "--on-crash halt: refused, the choices named" $?
run 2 "--on-crash pause needs --control" --partition kvm --on-crash pause
result "--on-crash pause without --control: refused" $?
run 2 "--on-crash pause, --restore and --device hyperv-testdev are for --partition kvm" \
	--partition process --on-crash pause --control "$dir/c.sock"
result "--on-crash pause in the process partition: refused" $?
run 70 "--disk $dir/none.img: No such file" --disk "path=$dir/none.img"
result "--disk that does not exist: exit 70, the file named" $?

refused --kernel /nonexistent/bzImage
result "--kernel needs /dev/kvm" $?
refused --initrd /nonexistent/initrd
result "--initrd needs /dev/kvm" $?
refused --debug-exit
result "--debug-exit needs /dev/kvm" $?
refused --device hyperv-testdev
result "--device hyperv-testdev needs /dev/kvm" $?
refused --serial none
result "--serial none needs /dev/kvm" $?
refused --serial pty
result "--serial pty needs /dev/kvm" $?
refused --serial "unix:$dir/own" && [ ! -e "$dir/own" ]
result "--serial unix: needs /dev/kvm, and its own socket is removed" $?

# A live listener at the path: refused, and the socket stays the other
# process's (it still answers).
python3 - "$dir/live" >"$dir/listener.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(4)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"mine\n")
    except OSError:
        pass  # hvkit's probe connects and goes at once
    c.close()
PY
pid=$!
for _ in $(seq 100); do grep -q listening "$dir/listener.log" 2>/dev/null && break; sleep 0.1; done
run 70 "another process is listening there" --timeout 20 --serial "unix:$dir/live"
result "--serial unix: at a live listener is refused" $?
python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); sys.exit(0 if s.recv(5)==b"mine\n" else 1)' "$dir/live"
result "the listener's socket is still there and still theirs" $?
kill "$pid"
pid=

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
