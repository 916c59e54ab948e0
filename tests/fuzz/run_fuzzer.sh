#!/bin/sh
# ctest's fuzz_softhfi_ioctl: run a libFuzzer target for a bounded time on a
# fresh copy of its seed corpus.
#
#   run_fuzzer.sh FUZZER SEED_DIR WORK_DIR SECONDS
#
# Exits 0 if nothing was found, 77 if the target says this machine cannot
# run it (no userfaultfd or io_uring), and 1 otherwise; a reproducer is then
# in WORK_DIR/artifacts/ (re-run it with: FUZZER FILE).
set -eu
fuzzer=$1
seeds=$2
work=$3
seconds=$4

rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"

# libFuzzer's own error exit code is 77 as well: make every failure 1.
rc=0
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 \
	-error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/" "$work/corpus" || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
	echo "run_fuzzer.sh: $(basename "$fuzzer") failed (exit $rc); reproducers:"
	ls -l "$work/artifacts/"
	echo "reproduce with: $fuzzer $work/artifacts/<file>"
	rc=1
fi
exit "$rc"
