#!/bin/sh
# Runs a test program with the Debian cloud kernel's path as its last
# argument, or without it (the program skips those cases) when it cannot be
# fetched.
root=$(dirname "$0")/../..
kernel=$("$root/scripts/fetch-linux-kernel" 2>/dev/null) || kernel=""
exec "$@" $kernel
