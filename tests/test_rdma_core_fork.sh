#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# rdma-core's own tests/test_fork.py against hfi1_0 on a private soft HFI,
# as rdma-core runs it (its run_tests.py, --dev hfi1_0), once plain and
# once with RDMAV_FORK_SAFE=1 (libibverbs then calls ibv_fork_init() when
# it lists the devices):
#
#   tests/test_rdma_core_fork.sh HFI1_SOFT PYTHON
#
# Debian ships rdma-core's test suite with python3-pyverbs, in
# /usr/share/doc/rdma-core/tests (RDMA_CORE_TESTS overrides), some files
# gzipped: they are unpacked into a temporary copy. Exits 77 (skipped) when
# that suite or pyverbs is not installed, or when no soft HFI can come up
# (tests/with_soft_hfi.sh says why).

set -u

readonly SKIP=77
HFI1_SOFT=${1:?usage: $0 HFI1_SOFT PYTHON}
PYTHON=${2:?usage: $0 HFI1_SOFT PYTHON}
SRC=${RDMA_CORE_TESTS:-/usr/share/doc/rdma-core/tests}
HERE=$(cd "$(dirname "$0")" && pwd)

if [ ! -e "$SRC/run_tests.py" ] ||
	{ [ ! -e "$SRC/test_fork.py" ] && [ ! -e "$SRC/test_fork.py.gz" ]; }; then
	echo "SKIP: rdma-core's test suite is not in $SRC (Debian: python3-pyverbs)"
	exit $SKIP
fi
if ! "$PYTHON" -c 'import pyverbs.fork' 2>/dev/null; then
	echo "SKIP: $PYTHON has no pyverbs (Debian: python3-pyverbs)"
	exit $SKIP
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rdma-core-tests.XXXXXX") || exit 1
trap 'rm -rf -- "$TMP"' EXIT
cp -r -- "$SRC" "$TMP/tests" || exit 1
find "$TMP/tests" -name '*.gz' -exec gunzip -f {} + || exit 1

# with_soft_hfi.sh exits 77 where no soft HFI can come up.
run()
{
	echo "== test_fork.py${1:+ with $1}"
	env ${1:+"$1"} PYTHONDONTWRITEBYTECODE=1 \
		bash "$HERE/with_soft_hfi.sh" "$HFI1_SOFT" \
		"$PYTHON" "$TMP/tests/run_tests.py" --dev hfi1_0 -v test_fork
}

run "" || exit
run RDMAV_FORK_SAFE=1
