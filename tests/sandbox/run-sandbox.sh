#!/bin/sh
# hvkit run's threads under the sandbox (docs/sandbox.md): every thread of
# a running machine in seccomp filter mode with no capabilities, each vCPU
# thread with the vCPU filter stacked (two filters; KVM only), none of it
# with --sandbox off, and a bad --sandbox value refused.
# usage: run-sandbox.sh HVKIT
set -eu
hvkit=$1
. "$(dirname "$0")/../storage/ctl_lib.sh"
echo "1..4"

# "field value" for every thread of $pid, one line each.
threads() {
	for t in /proc/"$pid"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = hvkit ] || continue # KVM's kernel workers
		awk -v f="$1" '$1 == f":" { print $2 }' "$t/status"
	done
}

start_run --cpus 2
wait_for "^hvkit: sandboxed:"
modes=$(threads Seccomp | sort -u)
caps=$(threads CapEff | sort -u)
vcpu_filtered=$(threads Seccomp_filters | grep -c '^2$' || true)
if [ "$modes" = 2 ] && [ "$caps" = 0000000000000000 ]; then
	echo "ok 1 - every thread is filtered and holds no capability"
else
	echo "not ok 1 - seccomp modes '$modes', capabilities '$caps'"
fi
if run_says "vCPU filter on each vCPU"; then
	[ "$vcpu_filtered" = 2 ] && echo "ok 2 - both vCPU threads have the vCPU filter too" ||
		echo "not ok 2 - $vcpu_filtered threads with two filters, not 2"
else
	echo "ok 2 # SKIP the process partition (no usable /dev/kvm) has no vCPU threads"
fi
"$hvkit" ctl "$sock" quit >/dev/null
finish_run >/dev/null

start_run --cpus 2 --sandbox off
wait_for "^hvkit: control socket"
wait_for "vmbus: the guest connected\|guest: vmbus: version"
modes=$(threads Seccomp | sort -u)
if [ "$modes" = 0 ] && ! run_says "sandboxed"; then
	echo "ok 3 - --sandbox off leaves every thread unfiltered"
else
	echo "not ok 3 - seccomp modes '$modes' with --sandbox off"
fi
"$hvkit" ctl "$sock" quit >/dev/null
finish_run >/dev/null

if "$hvkit" run --sandbox maybe >"$dir/bad.out" 2>&1; then
	echo "not ok 4 - --sandbox maybe was accepted"
elif grep -q -- "--sandbox takes on or off, not 'maybe'" "$dir/bad.out"; then
	echo "ok 4 - --sandbox maybe is refused by name"
else
	echo "not ok 4 - --sandbox maybe: $(cat "$dir/bad.out")"
fi
