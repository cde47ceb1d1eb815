#!/bin/sh
# hvkit run --disk: the controller is offered next to the echo devices and
# the run still passes; bad --disk options and missing images are refused.
set -eu
hvkit=$1
img=$(mktemp)
trap 'rm -f "$img"' EXIT
truncate -s 4M "$img"
out=$("$hvkit" run --packets 10 --disk "path=$img,serial=S1" --disk "path=$img,readonly=on")
echo "$out"
echo "$out" | grep -q "2 disk(s)"
echo "$out" | grep -q "^  scsi "
for bad in "readonly=on" "path=$img,readonly=maybe" "path=$img,color=red" "path=/nonexistent/img"; do
	if "$hvkit" run --packets 1 --disk "$bad" >/dev/null 2>&1; then
		echo "accepted --disk $bad" >&2
		exit 1
	fi
done
echo "ok"
