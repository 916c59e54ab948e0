#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# Stock verbs clients, Debian's packages unmodified, between two processes
# on a private soft HFI (hfi1_0, LID 1 and hfi1_1, LID 2):
#
#   tests/test_clients.sh HFI1_SOFT [PATTERN...]
#
# ibv_rc_pingpong, ibv_uc_pingpong, ibv_ud_pingpong and ibv_srq_pingpong
# (ibverbs-utils) from hfi1_0 to hfi1_1 and in loopback (both ends on
# hfi1_0), polling and with -e (completion events); perftest's ib_send_bw and ib_send_lat over
# RC, UC and UD, ib_write_bw and ib_write_lat over RC and UC, ib_read_bw,
# ib_read_lat, ib_atomic_bw and ib_atomic_lat, from hfi1_0 to hfi1_1 over
# perftest's own TCP exchange. Each pair is a server and a client on
# localhost on a port of its own, each with a timeout; each prints PASS or
# FAIL with its name, and a failure its output.
#
# With PATTERNs, only the cases whose name matches one of them (bash
# globs) run, pending ones included: "rc_pingpong*", "perftest_*". Without,
# every case but the pending ones (PENDING below). Exits 0 when every case run
# passed, 1 otherwise, 77 (skipped) when ibverbs-utils or perftest is not
# installed or no soft HFI can come up (tests/with_soft_hfi.sh says why).
#
# CLIENTS_TIMEOUT (seconds, default 30) bounds each program; CLIENTS_PORT
# (default 18515) is the first TCP port; CLIENTS_ITERS (default 200) is
# each client's iteration count.

set -euo pipefail

readonly SKIP=77
HFI1_SOFT=${1:?usage: $0 HFI1_SOFT [PATTERN...]}
shift
HERE=$(cd "$(dirname "$0")" && pwd)

# Cases that do not pass reliably yet, run only when a PATTERN names them
# (none at present; a case goes here with the reason it fails).
readonly PENDING=()

if [ "${CLIENTS_INNER:-}" != 1 ]; then
	for prog in ibv_rc_pingpong ibv_uc_pingpong ibv_ud_pingpong \
		ibv_srq_pingpong ib_send_bw ib_send_lat ib_write_bw \
		ib_write_lat ib_read_bw ib_read_lat ib_atomic_bw ib_atomic_lat; do
		if ! command -v "$prog" >/dev/null; then
			echo "SKIP: $prog is not installed (Debian: ibverbs-utils, perftest)"
			exit $SKIP
		fi
	done
	# with_soft_hfi.sh brings the soft HFIs up, runs us again and takes
	# them down; it exits 77 where none can come up.
	CLIENTS_INNER=1 exec bash "$HERE/with_soft_hfi.sh" "$HFI1_SOFT" \
		bash "$0" "$HFI1_SOFT" "$@"
fi

TIMEOUT=${CLIENTS_TIMEOUT:-30}
PORT=${CLIENTS_PORT:-18515}
ITERS=${CLIENTS_ITERS:-200}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/hfi1-clients.XXXXXX")
trap 'rm -rf -- "$OUT"' EXIT

# shellcheck source=lib/pairs.sh
. "$HERE/lib/pairs.sh"

PATTERNS=("$@")

# ibverbs-utils: each pingpong from hfi1_0 to hfi1_1 and in loopback on
# hfi1_0, polling and with completion events (-e).
for t in rc uc ud srq; do
	for ev in "" -e; do
		n=${t}_pingpong${ev:+_events}
		pair "$n" ibv_${t}_pingpong -d hfi1_0 -n "$ITERS" $ev -- \
			ibv_${t}_pingpong -d hfi1_1 -n "$ITERS" $ev
		pair "${n}_loopback" ibv_${t}_pingpong -d hfi1_0 -n "$ITERS" $ev -- \
			ibv_${t}_pingpong -d hfi1_0 -n "$ITERS" $ev
	done
done
# With a GRH: -g 0 makes the AH global, to the GID ibv_query_gid gives.
pair ud_pingpong_grh ibv_ud_pingpong -d hfi1_0 -n "$ITERS" -g 0 -- \
	ibv_ud_pingpong -d hfi1_1 -n "$ITERS" -g 0
pair rc_pingpong_grh ibv_rc_pingpong -d hfi1_0 -n "$ITERS" -g 0 -- \
	ibv_rc_pingpong -d hfi1_1 -n "$ITERS" -g 0

# perftest over its own TCP exchange (no rdma_cm), hfi1_0 serving hfi1_1,
# or hfi1_0 serving hfi1_0 (loopback). -F: no failure over the CPU
# frequency warning of the latency tests. A later -n overrides ITERS.
perf_on()
{
	local name=$1 sdev=$2 cdev=$3 prog=$4
	shift 4
	pair "perftest_$name" "$prog" -d "$sdev" -n "$ITERS" -F "$@" -- \
		"$prog" -d "$cdev" -n "$ITERS" -F "$@"
}
perf()
{
	local name=$1
	shift
	perf_on "$name" hfi1_0 hfi1_1 "$@"
}
for c in RC UC UD; do
	perf "send_bw_$c" ib_send_bw -c "$c"
	perf "send_lat_$c" ib_send_lat -c "$c"
done
for c in RC UC; do
	perf "write_bw_$c" ib_write_bw -c "$c"
	perf "write_lat_$c" ib_write_lat -c "$c"
done
perf read_bw ib_read_bw
perf read_lat ib_read_lat
perf atomic_bw ib_atomic_bw
perf atomic_lat ib_atomic_lat
perf atomic_bw_cmp_swap ib_atomic_bw -A CMP_AND_SWAP
perf atomic_lat_cmp_swap ib_atomic_lat -A CMP_AND_SWAP
# Completion events (-e).
for c in RC UC UD; do
	perf "send_bw_${c}_events" ib_send_bw -c "$c" -e
	perf "send_lat_${c}_events" ib_send_lat -c "$c" -e
done
perf read_bw_events ib_read_bw -e
perf atomic_bw_events ib_atomic_bw -e
# With a GRH (-x 0: the GID index).
perf send_bw_UD_grh ib_send_bw -c UD -x 0
perf send_lat_RC_grh ib_send_lat -c RC -x 0
# Both directions at once (-b), several QPs (-q), every size from 2 bytes
# to 8 MiB (-a; fewer iterations).
perf send_bw_RC_bidir ib_send_bw -c RC -b
perf write_bw_UC_bidir ib_write_bw -c UC -b
perf read_bw_bidir ib_read_bw -b
perf write_bw_RC_4qps ib_write_bw -c RC -q 4
perf send_bw_UD_4qps ib_send_bw -c UD -q 4
perf send_bw_RC_all_sizes ib_send_bw -c RC -a -n 20
perf write_bw_RC_all_sizes ib_write_bw -c RC -a -n 20
perf read_bw_all_sizes ib_read_bw -a -n 20
# Loopback: both ends on hfi1_0.
for c in RC UC UD; do
	perf_on "send_bw_${c}_loopback" hfi1_0 hfi1_0 ib_send_bw -c "$c"
done
perf_on write_lat_RC_loopback hfi1_0 hfi1_0 ib_write_lat -c RC
perf_on read_bw_loopback hfi1_0 hfi1_0 ib_read_bw
perf_on atomic_lat_loopback hfi1_0 hfi1_0 ib_atomic_lat

pairs_summary clients
