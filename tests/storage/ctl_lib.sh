# Sourced by the control-socket scripts (ctl_disk.sh, ctl_guest_devices.sh):
# a scratch directory $dir with two 1 MiB images a.img and b.img and the
# socket path $sock, removed on exit with the `hvkit run` that start_run
# began; $hvkit must be set first.
dir=$(mktemp -d)
sock=$dir/ctl.sock
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
truncate -s 1M "$dir/a.img" "$dir/b.img"

# `hvkit run --control $sock` with the given options, in the background,
# its output in $dir/run.out.
start_run() {
	"$hvkit" run --control "$sock" "$@" >"$dir/run.out" 2>&1 &
	pid=$!
}

# Runs the command (after the description) every 0.1 s until it succeeds,
# at most 300 times; then shows the run's output and fails with "never saw:
# DESCRIPTION".
wait_until() {
	what=$1
	shift
	i=0
	until "$@"; do
		i=$((i + 1))
		[ $i -lt 300 ] || { cat "$dir/run.out"; echo "never saw: $what" >&2; exit 1; }
		sleep 0.1
	done
}

# Whether the run's output has a line matching $1 (it may not exist yet).
run_says() {
	grep -q -- "$1" "$dir/run.out" 2>/dev/null
}

# Waits until the run's output has a line matching $1.
wait_for() {
	wait_until "$1" run_says "$1"
}

# Waits for `hvkit run` to end, shows its output; its exit status in $status.
finish_run() {
	status=0
	wait "$pid" || status=$?
	pid=
	cat "$dir/run.out"
}
