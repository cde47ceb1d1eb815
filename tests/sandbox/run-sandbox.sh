#!/bin/sh
# hvkit run's threads under the sandbox (docs/sandbox.md): every thread of
# a running machine in seccomp filter mode with no capabilities, each vCPU
# thread with the vCPU filter stacked (two filters; KVM only), none of it
# with --sandbox off, and a bad --sandbox value refused; with --landlock,
# a disk outside the files the command line names cannot be hot added,
# one beneath a --landlock-rule can.
# usage: run-sandbox.sh HVKIT
set -eu
hvkit=$1
. "$(dirname "$0")/../storage/ctl_lib.sh"
echo "1..7"

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

# --landlock: the run reaches what it names and nothing else.
if ! "$hvkit" run --landlock --help >/dev/null 2>"$dir/ll.err" && grep -q "no Landlock" "$dir/ll.err"; then
	for n in 5 6; do echo "ok $n # SKIP this kernel has no Landlock"; done
else
	mkdir "$dir/extra"
	truncate -s 1M "$dir/extra/c.img"
	start_run --partition process --landlock --disk path="$dir/a.img" \
		--landlock-rule path="$dir/extra",access=rw
	wait_for "^hvkit: control socket"
	wait_for "guest: disk 0:0"
	if "$hvkit" ctl "$sock" disk-add path="$dir/b.img" >"$dir/add.out" 2>&1; then
		echo "not ok 5 - a disk no rule names was hot added: $(cat "$dir/add.out")"
	elif grep -q "b.img: Permission denied" "$dir/add.out" && run_says "^hvkit: landlocked"; then
		echo "ok 5 - --landlock refuses a disk the command line does not name"
	else
		echo "not ok 5 - disk-add outside the rules: $(cat "$dir/add.out")"
	fi
	if "$hvkit" ctl "$sock" disk-add path="$dir/extra/c.img" >"$dir/add.out" 2>&1; then
		echo "ok 6 - a disk beneath a --landlock-rule directory is hot added"
	else
		echo "not ok 6 - disk-add beneath the rule: $(cat "$dir/add.out")"
	fi
	"$hvkit" ctl "$sock" quit >/dev/null
	finish_run >/dev/null
fi

if "$hvkit" run --landlock-rule path=/tmp >"$dir/bad.out" 2>&1; then
	echo "not ok 7 - --landlock-rule without --landlock was accepted"
elif grep -q -- "--landlock-rule needs --landlock" "$dir/bad.out" &&
	! "$hvkit" run --landlock --landlock-rule path=/tmp,access=x >"$dir/bad.out" 2>&1 &&
	grep -q "bad option 'access=x'" "$dir/bad.out"; then
	echo "ok 7 - a rule without --landlock, and a bad access, are refused by name"
else
	echo "not ok 7 - bad --landlock-rule: $(cat "$dir/bad.out")"
fi
