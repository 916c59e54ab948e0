#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# Run a verbs program against a private soft HFI:
#
#   tests/with_soft_hfi.sh HFI1_SOFT PROGRAM [ARG...]
#
# brings up hfi1_0 (LID 1) and hfi1_1 (LID 2) with the hfi1-soft HFI1_SOFT
# in a private HFI1_SOFT_RUNDIR, runs PROGRAM with the environment up
# prints, takes them down and exits with PROGRAM's status. Exits 77
# (skipped) where a soft HFI cannot come up: not root, or a kernel with
# RDMA netlink (libibverbs then ignores SYSFS_PATH).

set -u

readonly SKIP=77
HFI1_SOFT=${1:?usage: $0 HFI1_SOFT PROGRAM [ARG...]}
shift

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: bringing up a soft HFI needs root"
	exit $SKIP
fi
if [ -d /sys/module/ib_core ]; then
	echo "SKIP: the kernel has RDMA netlink, so libibverbs ignores SYSFS_PATH"
	exit $SKIP
fi

unset SYSFS_PATH RDMAV_DRIVERS
RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/hfi1-soft-test.XXXXXX") || exit 1
# Readable by every user, as /run/hfi1-soft is: some tests drop to nobody.
chmod 0755 "$RUNDIR"
export HFI1_SOFT_RUNDIR=$RUNDIR
cleanup()
{
	"$HFI1_SOFT" down >/dev/null 2>&1
	rm -rf -- "$RUNDIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for dev in 0 1; do
	OUT=$("$HFI1_SOFT" up --name hfi1_$dev --lid $((dev + 1))) ||
		{ echo "FAIL: hfi1-soft up --name hfi1_$dev"; exit 1; }
done
eval "$OUT"
export VERBS_LOG_LEVEL=${VERBS_LOG_LEVEL:-3}
export VERBS_LOG_FILE=${VERBS_LOG_FILE:-/dev/stderr}
"$@"
