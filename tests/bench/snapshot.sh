#!/usr/bin/env bash
# VM snapshot and restore figures (docs/lifecycle.md): hvkit-os serving on
# the KVM machine with 64 MiB and 1 GiB of RAM (mostly untouched), saved
# SAMPLES times with `hvkit ctl snapshot --resume` (the pause the guest
# sees: the VPs stand still from the pause to the file's rename), then
# restored SAMPLES times from the last file (the time hvkit logs from
# opening the file to the VM ready to run). Prints the medians and the
# file size.
# usage: tests/bench/snapshot.sh [HVKIT] [SAMPLES]   (default build/cmd/hvkit, 5)
set -eu
hvkit=$(realpath "${1:-build/cmd/hvkit}")
samples=${2:-5}
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"

median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

wait_ready() { # SOCKET
	for _ in $(seq 600); do
		"$hvkit" ctl "$1" status 2>/dev/null | grep -q "kvp: ready" && return 0
		sleep 0.1
	done
	echo "the VM did not come up" >&2
	return 1
}

for mem in 64M 1G; do
	"$hvkit" run --partition kvm --memory "$mem" --control vm.sock >run.out 2>&1 &
	pid=$!
	wait_ready vm.sock
	: >save.txt
	for _ in $(seq "$samples"); do
		"$hvkit" ctl --json vm.sock snapshot vm.snap --resume |
			python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["seconds"] * 1000, r["bytes"], r["ram_bytes"])' >>save.txt
	done
	"$hvkit" ctl vm.sock quit >/dev/null
	wait "$pid" || true
	: >restore.txt
	for _ in $(seq "$samples"); do
		"$hvkit" run --partition kvm --memory "$mem" --control vm.sock --restore vm.snap \
			>run.out 2>&1 &
		pid=$!
		wait_ready vm.sock
		sed -n 's/.*restored from vm.snap: .*, \([0-9.]*\) ms$/\1/p' run.out >>restore.txt
		"$hvkit" ctl vm.sock quit >/dev/null
		wait "$pid" || true
	done
	pid=
	printf '%-5s snapshot %7.1f ms (the guest paused as long)  file %6.2f MiB (RAM pages %6.2f MiB)  restore %7.1f ms\n' \
		"$mem" "$(cut -d' ' -f1 save.txt | median)" \
		"$(cut -d' ' -f2 save.txt | median | awk '{print $1 / 1048576}')" \
		"$(cut -d' ' -f3 save.txt | median | awk '{print $1 / 1048576}')" \
		"$(median <restore.txt)"
done
