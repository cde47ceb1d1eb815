#!/bin/sh
# Runs one libFuzzer target for a bounded time, starting from its committed
# seeds and keeping what it finds in the build directory.
#   run-fuzzer.sh BINARY SEED_DIR WORK_DIR
# HVKIT_FUZZ_SECONDS sets the time (default 20). A crash or a hang exits
# 1: libFuzzer's own 77 would read as "skipped" to meson.
set -eu
binary=$1 seeds=$2 work=$3
mkdir -p "$work/corpus" "$work/artifacts"
exec "$binary" "$work/corpus" "$seeds" \
	-max_total_time="${HVKIT_FUZZ_SECONDS:-20}" \
	-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-error_exitcode=1 -timeout_exitcode=1 \
	-artifact_prefix="$work/artifacts/"
