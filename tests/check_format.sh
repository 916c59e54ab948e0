#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# Check that every C source and header in providers/, tests/, examples/ and
# tools/ is formatted by the tree's .clang-format (the kernel's style).
#
#   tests/check_format.sh [SOURCE_DIR]          (ctest: style_clang_format)
#
# The files are found when the check runs, so a new file is checked without
# a cmake run. The tree is formatted with clang-format 14 (Debian 12's):
# other releases format some constructs differently, so the check is skipped
# (exit 77) with them, as it is without clang-format; CLANG_FORMAT names
# the binary to use, and then its release is not checked.
#
# To fix what it reports:
#   clang-format -i $(git ls-files 'providers/*.[ch]' 'tests/*.[ch]' \
#                       'examples/*.[ch]' 'tools/*.[ch]')

set -u

readonly SKIP=77 WANT_MAJOR=14
SRC=$(cd -- "${1:-$(dirname -- "${BASH_SOURCE[0]}")/..}" && pwd) || exit 1

if [ -n "${CLANG_FORMAT:-}" ]; then
	CF=$CLANG_FORMAT
	command -v -- "$CF" >/dev/null || {
		echo "CLANG_FORMAT=$CF is not an executable"
		exit 1
	}
else
	CF=
	for c in clang-format-$WANT_MAJOR clang-format; do
		if command -v -- "$c" >/dev/null; then
			CF=$c
			break
		fi
	done
	if [ -z "$CF" ]; then
		echo "SKIP: no clang-format (apt-get install clang-format)"
		exit $SKIP
	fi
	version=$("$CF" --version)
	major=$(sed -n 's/.*clang-format version \([0-9]*\)\..*/\1/p' \
		<<<"$version")
	if [ "$major" != "$WANT_MAJOR" ]; then
		echo "SKIP: the tree is formatted with clang-format $WANT_MAJOR;" \
		     "$CF is '$version' (set CLANG_FORMAT to use it anyway)"
		exit $SKIP
	fi
fi

if [ ! -f "$SRC/.clang-format" ]; then
	echo "no $SRC/.clang-format"
	exit 1
fi

cd -- "$SRC" || exit 1
mapfile -d '' FILES < <(find providers tests examples tools \
	-type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
if [ ${#FILES[@]} -eq 0 ]; then
	echo "no C sources found under $SRC"
	exit 1
fi

"$CF" --version
echo "checking ${#FILES[@]} files under $SRC"
# --style=file reads $SRC/.clang-format; no fallback, so that a missing
# style cannot pass silently.
if ! "$CF" --dry-run --Werror --style=file --fallback-style=none \
	-- "${FILES[@]}"; then
	echo "FAIL: not formatted as .clang-format says; run"
	echo "    clang-format -i <the files above>"
	exit 1
fi
echo "PASS: all ${#FILES[@]} files are clang-formatted"
