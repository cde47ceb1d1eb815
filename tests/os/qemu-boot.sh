#!/bin/sh
# hvkit-os under a stock QEMU (KVM when usable, else TCG), which has no
# Hyper-V: it must boot, say "Hyper-V not detected", and power off both
# through isa-debug-exit (status (0 << 1) | 1) and through ACPI S5. TAP
# output; skipped where qemu-system-x86_64 is not installed.
os="$1"
echo "1..2"
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
	echo "ok 1 # SKIP qemu-system-x86_64 not installed"
	echo "ok 2 # SKIP qemu-system-x86_64 not installed"
	exit 0
fi
accel=tcg
[ -w /dev/kvm ] && accel=kvm:tcg
log=$(mktemp)
trap 'rm -f "$log"' EXIT

boot() {
	timeout 120 qemu-system-x86_64 -machine pc,accel=$accel -smp 2 -m 64 -kernel "$os" \
		-display none -serial "file:$log" -no-reboot -monitor none "$@" 2>/dev/null
}

boot -append "hvkit.debug_exit" -device isa-debug-exit,iobase=0xf4,iosize=4
status=$?
if [ "$status" -eq 1 ] && grep -q "Hyper-V not detected" "$log" &&
	grep -q "TSC [1-9][0-9]* MHz" "$log" && grep -q "2 of 2 VPs online" "$log" &&
	grep -q "power off, status 0" "$log"; then
	echo "ok 1 - boots, reports no Hyper-V, exits through isa-debug-exit"
else
	echo "not ok 1 - isa-debug-exit run: exit $status"
	sed 's/^/# /' "$log"
fi

boot
status=$?
if [ "$status" -eq 0 ] && grep -q "power off, status 0" "$log"; then
	echo "ok 2 - powers off through ACPI S5"
else
	echo "not ok 2 - S5 run: exit $status"
	sed 's/^/# /' "$log"
fi
