#!/bin/sh
# The project's Multiboot test kernel (tests/kvm/mbtest) on hvkit's KVM
# machine and on stock QEMU: its module is checked byte for byte, QEMU's
# Hyper-V test device is driven through SINT routes, a message connection
# and an event connection, and the verdict comes back through
# isa-debug-exit (67 = (0x21 << 1) | 1 is a pass). Also --serial: file:
# gets the kernel's report, none keeps it off standard output, unix: and
# pty are consoles both ways (the kernel reads a line and echoes it).
# TAP; the hvkit cases skip without a usable /dev/kvm, the QEMU case
# without qemu-system-x86_64.
# usage: mbtest.sh HVKIT MBTEST_KERNEL
hvkit="$1"
kernel="$2"
echo "1..8"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# byte i = (i * 7 + 3) & 0xff, as the kernel expects for "mod=SIZE".
python3 -c "import sys; sys.stdout.buffer.write(bytes((i * 7 + 3) & 255 for i in range(5000)))" \
	>"$work/module"
PASS=67

mb() { # name, extra options...: runs hvkit, status in $status, output in $work/NAME.out
	name=$1
	shift
	"$hvkit" run --partition kvm --cpus 1 --timeout 60 --kernel "$kernel" \
		--initrd "$work/module" --debug-exit "$@" >"$work/$name.out" 2>&1
	status=$?
}

result() { # number, description, condition status (0 = ok)
	if [ "$3" = 0 ]; then
		echo "ok $1 - $2"
	else
		echo "not ok $1 - $2"
	fi
}

mb hyperv --device hyperv-testdev --cmdline "mbtest mod=5000 hyperv fwcfg=1,64" \
	--serial "file:$work/serial"
if grep -q "run: no usable /dev/kvm" "$work/hyperv.out"; then
	for i in 1 2 3 4; do echo "ok $i # SKIP no usable /dev/kvm"; done
else
	ok=1
	[ "$status" = $PASS ] && grep -q "^mbtest: PASS" "$work/serial" &&
		grep -q "message connection: type and payload echoed" "$work/serial" &&
		grep -q "event connection: its flag set" "$work/serial" &&
		grep -q "ok   message connection: one echo in flight" "$work/serial" &&
		grep -q "ok   HvSignalEvent with a flag number: invalid port" "$work/serial" &&
		grep -q "ok   fw_cfg: RAM size" "$work/serial" &&
		! grep -q "^mbtest:" "$work/hyperv.out" && ok=0
	result 1 "hvkit: module, SINT route, message and event connections pass (--serial file:)" $ok
	[ $ok = 0 ] || { sed 's/^/# /' "$work/hyperv.out" "$work/serial"; }

	mb quiet --cmdline "mbtest mod=5000" --serial none
	ok=1
	[ "$status" = $PASS ] && ! grep -q "^mbtest:" "$work/quiet.out" && ok=0
	result 2 "hvkit: --serial none, module only, the verdict still arrives" $ok

	# A module one byte shorter than the kernel is told: check 4
	# (MBTEST_MODULE_SIZE) fails, status (4 << 1) | 1.
	mb short --cmdline "mbtest mod=5001"
	ok=1
	[ "$status" = 9 ] && grep -q "FAIL at check 4" "$work/short.out" && ok=0
	result 3 "hvkit: a wrong module size fails with its check's status" $ok

	# --serial stdio is the default: the report is on standard output.
	mb stdio --cmdline "mbtest mod=5000" --serial stdio
	ok=1
	[ "$status" = $PASS ] && grep -q "^mbtest: PASS" "$work/stdio.out" && ok=0
	result 4 "hvkit: --serial stdio" $ok
fi

# QEMU has no Hyper-V without an in-kernel one (not on PVM): the module
# and isa-debug-exit only, under TCG.
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
	echo "ok 5 # SKIP no qemu-system-x86_64"
else
	timeout 120 qemu-system-x86_64 -nodefaults -nographic -no-reboot -m 64 -accel tcg \
		-kernel "$kernel" -initrd "$work/module" -append "mbtest mod=5000 fwcfg=1,64" \
		-device isa-debug-exit,iobase=0xf4,iosize=4 -serial "file:$work/qemu.serial" \
		-monitor none >"$work/qemu.out" 2>&1
	status=$?
	ok=1
	[ "$status" = $PASS ] && grep -q "^mbtest: PASS" "$work/qemu.serial" &&
		grep -q "ok   fw_cfg: RAM size" "$work/qemu.serial" && ok=0
	result 5 "QEMU (TCG): the same kernel, module, fw_cfg and isa-debug-exit" $ok
	[ $ok = 0 ] || sed 's/^/# /' "$work/qemu.out" "$work/qemu.serial"
fi

# --serial unix: the output written before the client connects is kept for
# it (the client connects once the kernel has long printed its prompt, and
# hvkit reports how much it kept); what the client types reaches the
# guest's UART.
if ! grep -q "run: no usable /dev/kvm" "$work/hyperv.out"; then
	"$hvkit" run --partition kvm --cpus 1 --timeout 60 --kernel "$kernel" --debug-exit \
		--cmdline "mbtest echo" --serial "unix:$work/console" >"$work/unix.out" 2>&1 &
	run=$!
	python3 - "$work/console" "$work/unix.out" >"$work/console.log" 2>&1 <<'PY'
import os, socket, sys, time
# A late client: it connects once hvkit says COM1 output is waiting for
# one (so what it reads first comes from the backlog).
for _ in range(600):
    if "output waits for a client" in open(sys.argv[2]).read():
        break
    time.sleep(0.1)
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(60)
buf = b''
def until(text):
    global buf
    while text not in buf:
        d = s.recv(4096)
        if not d:
            return
        buf += d
until(b'type a line')
s.sendall(b'hello over unix\n')
until(b'mbtest: PASS')
sys.stdout.write(buf.decode())
PY
	wait $run
	status=$?
	ok=1
	[ "$status" = $PASS ] && grep -q "^mbtest: started" "$work/console.log" &&
		grep -q 'mbtest: got "hello over unix"' "$work/console.log" &&
		grep -q "a client connected ([1-9][0-9]* bytes of earlier output" "$work/unix.out" &&
		[ ! -e "$work/console" ] && ok=0
	result 6 "hvkit: --serial unix: output written before the client came, and input" $ok
	[ $ok = 0 ] || sed 's/^/# /' "$work/unix.out" "$work/console.log"
else
	echo "ok 6 # SKIP no usable /dev/kvm"
fi

if ! grep -q "run: no usable /dev/kvm" "$work/hyperv.out"; then

	# No test device: the SINT never comes. The kernel's wait is bounded
	# (a LAPIC timer wakes its hlt), so check 7 (MBTEST_SET_SINT) fails
	# with its own status, (7 << 1) | 1, instead of the run timing out.
	mb nosint --cmdline "mbtest hyperv"
	ok=1
	[ "$status" = 15 ] && grep -q "FAIL at check 7" "$work/nosint.out" && ok=0
	result 7 "hvkit: a SINT that never comes fails its own check" $ok
	[ $ok = 0 ] || sed 's/^/# /' "$work/nosint.out"
else
	echo "ok 7 # SKIP no usable /dev/kvm"
fi

# --serial pty: hvkit names the terminal at start; a client that opens it
# then reads the kernel's prompt and types the line.
if ! grep -q "run: no usable /dev/kvm" "$work/hyperv.out"; then
	"$hvkit" run --partition kvm --cpus 1 --timeout 60 --kernel "$kernel" --debug-exit \
		--cmdline "mbtest echo" --serial pty >"$work/pty.out" 2>&1 &
	run=$!
	python3 - "$work/pty.out" >"$work/pty.log" 2>&1 <<'PY'
import os, re, select, sys, time
name = None
for _ in range(300):
    m = re.search(r'COM1 is (\S+)', open(sys.argv[1]).read())
    if m:
        name = m.group(1)
        break
    time.sleep(0.1)
fd = os.open(name, os.O_RDWR | os.O_NOCTTY)
buf = b''
def until(text):
    global buf
    end = time.time() + 60
    while text not in buf and time.time() < end:
        if select.select([fd], [], [], 1)[0]:
            buf += os.read(fd, 4096)
until(b'type a line')
os.write(fd, b'hello over pty\n')
until(b'mbtest: PASS')
sys.stdout.write(buf.decode(errors='replace'))
PY
	wait $run
	status=$?
	ok=1
	[ "$status" = $PASS ] && grep -q 'mbtest: got "hello over pty"' "$work/pty.log" && ok=0
	result 8 "hvkit: --serial pty, both ways" $ok
	[ $ok = 0 ] || sed 's/^/# /' "$work/pty.out" "$work/pty.log"
else
	echo "ok 8 # SKIP no usable /dev/kvm"
fi
exit 0
