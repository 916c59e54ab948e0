# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# The check helpers of the shell tests: one line per check, then a total.
# Source it; it keeps its counts in PASSED and FAILED.

PASSED=0
FAILED=0

pass()
{
	echo "PASS: $*"
	PASSED=$((PASSED + 1))
}

fail()
{
	echo "FAIL: $*"
	FAILED=$((FAILED + 1))
}

skip()
{
	echo "SKIP: $*"
}

# check DESCRIPTION EXPRESSION: pass if the shell expression succeeds.
check()
{
	if eval "$2"; then
		pass "$1"
	else
		fail "$1"
	fi
}

# Print the total and exit: 0 when nothing failed, 1 otherwise.
finish()
{
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit
}
