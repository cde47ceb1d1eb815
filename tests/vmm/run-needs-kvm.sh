#!/usr/bin/env bash
# hvkit run without --partition: options only a KVM machine has make it a
# KVM run, so without a usable /dev/kvm it fails with a clear message
# instead of quietly running the process partition. And --serial unix:
# never takes over or removes a socket another process listens on.
# TAP; needs no /dev/kvm (HVKIT_KVM_DEVICE=/nonexistent simulates none).
set -u
hvkit=$1
export HVKIT_KVM_DEVICE=/nonexistent
dir=$(mktemp -d)
listener=
cleanup() {
	[ -n "$listener" ] && kill "$listener" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

n=0
fail=0
check() { # description, then the test command
	local what=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $what"
	else
		echo "not ok $n - $what"
		fail=1
	fi
}

refused() { # options...: exit 70 (hvkit failed), "need /dev/kvm", no process partition
	"$hvkit" run --timeout 20 "$@" >"$dir/out" 2>"$dir/err"
	local rc=$?
	[ $rc -eq 70 ] && grep -q "need /dev/kvm" "$dir/err" && ! grep -q "process partition" "$dir/out"
}

echo "1..9"
check "--kernel needs /dev/kvm" refused --kernel /nonexistent/bzImage
check "--initrd needs /dev/kvm" refused --initrd /nonexistent/initrd
check "--debug-exit needs /dev/kvm" refused --debug-exit
check "--device hyperv-testdev needs /dev/kvm" refused --device hyperv-testdev
check "--serial none needs /dev/kvm" refused --serial none
check "--serial pty needs /dev/kvm" refused --serial pty
own_removed() { refused --serial "unix:$dir/own" && [ ! -e "$dir/own" ]; }
check "--serial unix: needs /dev/kvm, and its own socket is removed" own_removed

# A live listener at the path: refused, and the socket stays the other
# process's (it still answers).
python3 - "$dir/live" >"$dir/listener.log" 2>&1 <<'PY' &
import socket, sys, time
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
listener=$!
for _ in $(seq 100); do grep -q listening "$dir/listener.log" 2>/dev/null && break; sleep 0.1; done
live_refused() {
	"$hvkit" run --timeout 20 --serial "unix:$dir/live" >"$dir/out" 2>"$dir/err"
	[ $? -eq 70 ] && grep -q "another process is listening there" "$dir/err"
}
still_theirs() {
	python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); sys.exit(0 if s.recv(5)==b"mine\n" else 1)' "$dir/live"
}
check "--serial unix: at a live listener is refused" live_refused
check "the listener's socket is still there and still theirs" still_theirs
exit $fail
