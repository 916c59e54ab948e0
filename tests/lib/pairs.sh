# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# Server and client pairs of the shell tests, each run with a timeout on a
# TCP port of its own and reported as PASS or FAIL with its name (a
# failure with both outputs). Source it; the calls read:
#
#   TIMEOUT   seconds each program may run
#   PORT      the port before the first pair's (each pair takes the next)
#   OUT       a directory for the logs
#   PATTERNS  an array: bash globs of the cases to run (empty: all but
#             PENDING's)
#   PENDING   an array: cases that run only when a PATTERN names them
#
# pairs_summary NAME prints the totals and returns 1 when a case failed or
# none ran.

passed=()
failed=()
START=$SECONDS

selected()
{
	local name=$1 p
	if [ $# -gt 1 ]; then
		shift
		for p in "$@"; do
			# shellcheck disable=SC2053
			[[ $name == $p ]] && return 0
		done
		return 1
	fi
	for p in ${PENDING[@]+"${PENDING[@]}"}; do
		# shellcheck disable=SC2053
		[[ $name == $p ]] && return 1
	done
	return 0
}

# Whether something listens on TCP port $1 (IPv4 or IPv6), from /proc: a
# probe connection would be taken for the client.
listening()
{
	local hex
	hex=$(printf ':%04X ' "$1")
	grep -qs -- "$hex[0-9A-F:]* 0A " /proc/net/tcp /proc/net/tcp6
}

# pair NAME SERVER-COMMAND... -- CLIENT-COMMAND...
# The client gets "localhost" as its last argument. Both get -p PORT.
# When both exit 0 and PAIR_CHECK names a function, it is called with
# the logs' prefix (LOG.server, LOG.client) and prints why the case
# fails, or nothing.
pair()
{
	local name=$1
	shift
	local server=() client=()
	while [ "$1" != -- ]; do
		server+=("$1")
		shift
	done
	shift
	client=("$@")

	PORT=$((PORT + 1))
	selected "$name" "${PATTERNS[@]}" || return 0

	local log=$OUT/$name t0=$SECONDS spid i src=0 crc=0 why
	timeout -k 5 "$TIMEOUT" "${server[@]}" -p "$PORT" >"$log.server" 2>&1 &
	spid=$!
	for ((i = 0; i < 100; i++)); do
		listening "$PORT" && break
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.05
	done
	timeout -k 5 "$TIMEOUT" "${client[@]}" -p "$PORT" localhost \
		>"$log.client" 2>&1 || crc=$?
	wait "$spid" || src=$?

	if [ $src -eq 0 ] && [ $crc -eq 0 ]; then
		why=$(${PAIR_CHECK:-true} "$log")
		if [ -z "$why" ]; then
			echo "PASS: $name ($((SECONDS - t0)) s)"
			passed+=("$name")
			return 0
		fi
		echo "FAIL: $name ($why)"
	else
		echo "FAIL: $name (server exit $src, client exit $crc; 124 is the timeout)"
	fi
	echo "  server: ${server[*]} -p $PORT"
	sed 's/^/    /' "$log.server"
	echo "  client: ${client[*]} -p $PORT localhost"
	sed 's/^/    /' "$log.client"
	failed+=("$name")
}

pairs_summary()
{
	echo "== $1: ${#passed[@]} passed, ${#failed[@]} failed, $((SECONDS - START)) s"
	if [ ${#failed[@]} -gt 0 ]; then
		echo "failed: ${failed[*]}"
		return 1
	fi
	if [ ${#passed[@]} -eq 0 ]; then
		echo "FAIL: no case matched: ${PATTERNS[*]}"
		return 1
	fi
}
