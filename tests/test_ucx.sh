#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# UCX, Debian's packages unmodified, on a private soft HFI (hfi1_0, LID 1
# and hfi1_1, LID 2):
#
#   tests/test_ucx.sh HFI1_SOFT [PATTERN...]
#
# ucx_info -d lists rc_verbs and ud_verbs on hfi1_0:1 and hfi1_1:1; then
# ucx_perftest's tag_lat, tag_bw, ucp_put_bw and ucp_get between two
# processes, the server on hfi1_0 and the client on hfi1_1 (and a few with
# both on hfi1_0), over each transport forced with UCX_TLS: "rc_v"
# (rc_verbs, with ud_verbs only for the wire-up) and "ud_v" (ud_verbs).
# No shared-memory or TCP transport is in UCX_TLS, so only the soft HFI can
# carry the data. A case passes when both programs exit 0, the client
# reports its final line, UCX says it chose that transport on that device
# (UCX_LOG_LEVEL=info: "ep_cfg[N]: tag(rc_verbs/hfi1_1:1)"), neither
# side logged a UCX warning or error, and the data went over the soft
# HFI: each side runs under hfi1_mrstat (beside HFI1_SOFT), and their
# contexts received (rcv_bytes) at least the message size times the
# iterations.
#
# PATTERNs (bash globs) select cases, as in test_clients.sh. Exits 0 when
# every case run passed, 1 otherwise, 77 (skipped) when UCX's tools are
# not installed or no soft HFI can come up. HFI1_UCX_TEST_TIMEOUT
# (seconds, default 60) bounds each program; HFI1_UCX_TEST_PORT (default
# 18715) is the first TCP port. (Not UCX_*: UCX warns of every UCX_
# variable it does not know.)

set -euo pipefail

readonly SKIP=77
HFI1_SOFT=${1:?usage: $0 HFI1_SOFT [PATTERN...]}
shift
HERE=$(cd "$(dirname "$0")" && pwd)

MRSTAT=$(cd "$(dirname -- "$HFI1_SOFT")" && pwd)/hfi1_mrstat

if [ "${HFI1_UCX_TEST_INNER:-}" != 1 ]; then
	for prog in ucx_info ucx_perftest; do
		if ! command -v "$prog" >/dev/null; then
			echo "SKIP: $prog is not installed (Debian: ucx-utils)"
			exit $SKIP
		fi
	done
	if [ ! -x "$MRSTAT" ]; then
		echo "SKIP: $MRSTAT is not built"
		exit $SKIP
	fi
	HFI1_UCX_TEST_INNER=1 exec bash "$HERE/with_soft_hfi.sh" "$HFI1_SOFT" \
		bash "$0" "$HFI1_SOFT" "$@"
fi

TIMEOUT=${HFI1_UCX_TEST_TIMEOUT:-60}
PORT=${HFI1_UCX_TEST_PORT:-18715}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/hfi1-ucx.XXXXXX")
trap 'rm -rf -- "$OUT"' EXIT
PENDING=()
PATTERNS=("$@")

# shellcheck source=lib/pairs.sh
. "$HERE/lib/pairs.sh"

# UNDER_MRSTAT CMD...: CMD under hfi1_mrstat --json, whose JSON follows
# CMD's output (pair() takes "--" for its own).
UNDER_MRSTAT=$OUT/under_mrstat.sh
printf '#!/bin/sh\nexec "%s" --json -- "$@"\n' "$MRSTAT" >"$UNDER_MRSTAT"
chmod +x "$UNDER_MRSTAT"

# UCX's own log lines of a warning or an error ("UCX  WARN", "UCX  ERROR").
ucx_complaints()
{
	grep -h -E 'UCX +(WARN|ERROR)' "$@" || true
}

# ucx_info -d: both transports on both ports, and not a word of warning.
ucx_info_devices()
{
	local name=ucx_info_devices dev tl why=""

	selected "$name" "${PATTERNS[@]}" || return 0
	if ! timeout -k 5 "$TIMEOUT" ucx_info -d >"$OUT/$name" 2>&1; then
		why="ucx_info -d failed"
	fi
	for dev in hfi1_0:1 hfi1_1:1; do
		for tl in rc_verbs ud_verbs; do
			# A transport's block: "Transport: tl", then "Device: dev".
			grep -A1 -E "^# +Transport: $tl\$" "$OUT/$name" |
				grep -q -E "^# +Device: $dev\$" ||
				why+="${why:+; }no $tl on $dev"
		done
	done
	[ -z "$(ucx_complaints "$OUT/$name")" ] || why+="${why:+; }UCX warned"
	if [ -z "$why" ]; then
		pass_case "$name"
	else
		fail_case "$name" "$why" "$OUT/$name"
	fi
}

pass_case()
{
	echo "PASS: $1"
	passed+=("$1")
}

fail_case()
{
	echo "FAIL: $1 ($2)"
	sed 's/^/    /' "$3"
	failed+=("$1")
}

# The payload bytes that the contexts of LOG.server and LOG.client
# received, from the JSON hfi1_mrstat printed after each program's
# output.
received()
{
	local f

	for f in "$1.server" "$1.client"; do
		sed -n '/^{"contexts"/,$p' "$f"
	done | /usr/bin/python3 -c '
import json, sys
text, dec, total = sys.stdin.read(), json.JSONDecoder(), 0
pos = text.find("{")
while pos >= 0:
    d, end = dec.raw_decode(text, pos)
    total += sum(c["data"]["rcv_bytes"] for c in d["contexts"])
    pos = text.find("{", end)
print(total)'
}

# PAIR_CHECK: the client's final line, the transport UCX chose on the
# client's device, no warning on either side, and at least CHECK_BYTES
# received by the two sides' contexts. CHECK_TL and CHECK_DEV say what
# the case forced.
check_perftest()
{
	local log=$1 why="" cfg rcv

	grep -q '^Final:' "$log.client" || why="no final line"
	cfg=$(grep -h -o 'ep_cfg\[[0-9]*\]: .*' "$log.client" || true)
	if [ -z "$cfg" ]; then
		why+="${why:+; }UCX named no transport"
	elif ! grep -q "$CHECK_TL/$CHECK_DEV" <<<"$cfg" ||
	     grep -o '[a-z_]*/[a-z0-9_:]*' <<<"$cfg" |
		     grep -v -q -x -E "$CHECK_TL/$CHECK_DEV|self/memory[0-9]*"; then
		why+="${why:+; }UCX chose other transports: $cfg"
	fi
	[ -z "$(ucx_complaints "$log.server" "$log.client")" ] ||
		why+="${why:+; }UCX warned"
	rcv=$(received "$log" 2>&1) || rcv="none (hfi1_mrstat's JSON: $rcv)"
	[[ $rcv =~ ^[0-9]+$ ]] && [ "$rcv" -ge "$CHECK_BYTES" ] ||
		why+="${why:+; }$CHECK_BYTES bytes sent, the contexts received $rcv: not all over the soft HFI"
	echo "$why"
}
PAIR_CHECK=check_perftest

# perftest NAME TLS TL SERVER-DEV CLIENT-DEV TEST SIZE ITERS
perftest()
{
	local name=$1 tls=$2 sdev=$4 cdev=$5 test=$6 size=$7 iters=$8
	local env=(env UCX_TLS="$tls" UCX_LOG_LEVEL=info)
	local args=(ucx_perftest -t "$test" -s "$size" -n "$iters")

	CHECK_TL=$3
	CHECK_DEV=$cdev
	CHECK_BYTES=$((size * iters))
	pair "$name" "$UNDER_MRSTAT" "${env[@]}" UCX_NET_DEVICES="$sdev" \
		"${args[@]}" -- \
		"$UNDER_MRSTAT" "${env[@]}" UCX_NET_DEVICES="$cdev" "${args[@]}"
}

ucx_info_devices

# 8 bytes go eagerly; 64 KiB and 1 MiB are above UCX's rendezvous
# threshold, so the data moves by RDMA (rc_verbs) into buffers UCX
# registered, or in UCX's own fragments (ud_verbs has no RDMA).
for t in rc_v:rc_verbs ud_v:ud_verbs; do
	tls=${t%%:*}
	tl=${t#*:}
	perftest "${tl}_tag_lat" "$tls" "$tl" hfi1_0:1 hfi1_1:1 tag_lat 8 1000
	perftest "${tl}_tag_bw" "$tls" "$tl" hfi1_0:1 hfi1_1:1 tag_bw 65536 200
	perftest "${tl}_ucp_put_bw" "$tls" "$tl" hfi1_0:1 hfi1_1:1 \
		ucp_put_bw 65536 200
	perftest "${tl}_ucp_get" "$tls" "$tl" hfi1_0:1 hfi1_1:1 \
		ucp_get 65536 200
	perftest "${tl}_tag_bw_loopback" "$tls" "$tl" hfi1_0:1 hfi1_0:1 \
		tag_bw 65536 200
done
perftest rc_verbs_tag_bw_1m rc_v rc_verbs hfi1_0:1 hfi1_1:1 tag_bw 1048576 100

pairs_summary ucx
