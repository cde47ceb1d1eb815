#!/bin/sh
# Linux early boot on hvkit's KVM partition: Debian's cloud kernel (the ELF
# inside its bzImage, entered through PVH: the decompressor alone would take
# minutes where CPL0 code is emulated) runs for a bounded time; its serial
# log must show that it detected Microsoft Hyper-V, printed the
# feature/privilege words, parsed every ACPI table without error and
# registered the TSC page clocksource. The furthest point it reached is
# reported. TAP output; skipped without /dev/kvm or without the kernel.
hvkit="$1"
root=$(dirname "$0")/../..
echo "1..4"
skip_all() {
	for i in 1 2 3 4; do echo "ok $i # SKIP $1"; done
	exit 0
}
[ -w /dev/kvm ] || skip_all "no usable /dev/kvm"
kernel=$("$root/scripts/fetch-linux-kernel" --vmlinux 2>/dev/null) || skip_all "no Debian kernel"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$hvkit" run --partition kvm --cpus 2 --memory 512M --kernel "$kernel" \
	--cmdline "console=ttyS0 earlyprintk=serial,ttyS0 loglevel=7" --timeout "${HVKIT_LINUX_SECONDS:-60}" \
	>"$log" 2>&1
status=$?
if grep -q "run: no usable /dev/kvm" "$log"; then
	skip_all "/dev/kvm cannot run this VM"
fi

check() { # number, description, grep pattern
	if grep -q "$3" "$log"; then
		echo "ok $1 - $2"
	else
		echo "not ok $1 - $2"
		FAILED=1
	fi
}
check 1 "detects Microsoft Hyper-V" "Hypervisor detected: Microsoft Hyper-V"
check 2 "prints the feature and privilege words" "Hyper-V: privilege flags low 0x[0-9a-f]*, high 0x"
if grep -q "ACPI: DSDT" "$log" && grep -q "ACPI: FACP" "$log" && grep -q "ACPI: APIC" "$log" &&
	! grep -qiE "ACPI (BIOS )?(Error|Warning)|incorrect checksum|invalid table" "$log"; then
	echo "ok 3 - parses every ACPI table without error"
else
	echo "not ok 3 - parses every ACPI table without error"
	FAILED=1
fi
check 4 "registers hyperv_clocksource_tsc_page" "clocksource: hyperv_clocksource_tsc_page"
echo "# hvkit exit status $status; the furthest the kernel got:"
grep '^\[' "$log" | tail -3 | sed 's/^/#   /'
grep '^hvkit' "$log" | tail -2 | sed 's/^/#   /'
[ -z "$FAILED" ] || sed 's/^/# /' "$log"
exit 0
