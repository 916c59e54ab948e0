#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# rdma-core's own pyverbs test suite against hfi1_0 (and hfi1_1, which the
# tests that list every device also open) on a private soft HFI:
#
#   tests/rdma_core_suite.sh HFI1_SOFT PYTHON [TEST...]
#
# Debian ships rdma-core's test suite with python3-pyverbs, in
# /usr/share/doc/rdma-core/tests (RDMA_CORE_TESTS overrides), some files
# gzipped: they are unpacked into a temporary copy, which
# tests/rdma_core_suite.py loads as rdma-core's run_tests.py does (--dev
# hfi1_0 --port 1) and runs. TEST names narrow the run (test_cq,
# test_cq.CQTest.test_create_cq). The run passes with no failure and no
# error, and only with skips that tests/rdma_core_skips.txt allows
# (RDMA_CORE_SKIPS overrides); RDMA_CORE_SUITE_JSON names a file to write
# every test's outcome to. Exits 77 (skipped) when that suite or pyverbs
# is not installed, or when no soft HFI can come up (tests/with_soft_hfi.sh
# says why).

set -euo pipefail

readonly SKIP=77
HFI1_SOFT=${1:?usage: $0 HFI1_SOFT PYTHON [TEST...]}
PYTHON=${2:?usage: $0 HFI1_SOFT PYTHON [TEST...]}
shift 2
SRC=${RDMA_CORE_TESTS:-/usr/share/doc/rdma-core/tests}
HERE=$(cd "$(dirname "$0")" && pwd)
SKIPS=${RDMA_CORE_SKIPS:-$HERE/rdma_core_skips.txt}

if [ ! -e "$SRC/run_tests.py" ] || [ ! -e "$SRC/__init__.py" ] ||
	{ [ ! -e "$SRC/base.py" ] && [ ! -e "$SRC/base.py.gz" ]; }; then
	echo "SKIP: rdma-core's test suite is not in $SRC (Debian: python3-pyverbs)"
	exit $SKIP
fi
if ! "$PYTHON" -c 'import pyverbs.device' 2>/dev/null; then
	echo "SKIP: $PYTHON has no pyverbs (Debian: python3-pyverbs)"
	exit $SKIP
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rdma-core-tests.XXXXXX")
trap 'rm -rf -- "$TMP"' EXIT
cp -r -- "$SRC" "$TMP/tests"
find "$TMP/tests" -name '*.gz' -exec gunzip -f {} +
# Readable by every user: some tests drop to nobody.
chmod -R a+rX "$TMP"

JSON=()
if [ -n "${RDMA_CORE_SUITE_JSON:-}" ]; then
	JSON=(--json "$RDMA_CORE_SUITE_JSON")
fi

# with_soft_hfi.sh exits 77 where no soft HFI can come up, and otherwise
# with the runner's status.
rc=0
PYTHONDONTWRITEBYTECODE=1 bash "$HERE/with_soft_hfi.sh" "$HFI1_SOFT" \
	"$PYTHON" "$HERE/rdma_core_suite.py" --suite "$TMP/tests" \
	--skips "$SKIPS" --dev hfi1_0 --port 1 "${JSON[@]}" "$@" || rc=$?
exit $rc
