#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# Open MPI with the UCX PML, Debian's packages unmodified, on a private
# soft HFI (hfi1_0, LID 1 and hfi1_1, LID 2):
#
#   tests/test_mpi.sh HFI1_SOFT BINDIR [PATTERN...]
#
# BINDIR holds hfi1_mpibench, hfi1_mpichurn and hfi1_mrstat. Two ranks,
# each on its own device (rank N on hfi1_N) and both on hfi1_0, with
# UCX_TLS=rc_v,self: no shared memory, no TCP, so only the soft HFI can
# carry what goes between the ranks.
#
#   mpibench_*       hfi1_mpibench --quick: ping-pong and bandwidth, 8 B
#                    to 4 MiB, the data checked
#   churn_direct     hfi1_mpichurn --quick with UCX's registration cache
#                    off (UCX_IB_REG_METHODS=direct): every registration
#                    is libhfi1's; its cache must have missed and been
#                    invalidated
#   churn_ucx_cache  the same with UCX's defaults (UCX caches above us)
#   peer_killed      hfi1_mpichurn with rank 1 killed mid-run: mpirun
#                    must end, with an error, in well under the timeout
#
# A case passes when mpirun exits as it should, UCX says it chose
# rc_verbs on the ranks' devices (UCX_LOG_LEVEL=info: "ep_cfg[N]:
# tag(self/memory rc_verbs/hfi1_0:1)") and nothing else, no UCX warning
# or error was logged (but in peer_killed), no message was corrupt, and
# hfi1_mrstat counted registrations in libhfi1's caches. For mpibench_*,
# hfi1_mrstat also shows that the data went over the soft HFI: the ranks'
# contexts received (rcv_bytes) and placed through TIDs (placed_bytes) at
# least the bytes hfi1_mpibench says the ranks sent each other.
#
# The command line, as Debian's /etc/openmpi/openmpi-mca-params.conf
# turns the UCX PML off (pml = ^ucx) and Open MPI gives the UCX PML only
# to Mellanox devices by default:
#
#   mpirun -np 2 --mca pml ucx --mca pml_ucx_devices any \
#       -x UCX_TLS=rc_v,self -x UCX_NET_DEVICES=... PROGRAM
#
# Exits 0 when every case run passed, 1 otherwise, 77 (skipped) when Open
# MPI or the MPI programs are missing or no soft HFI can come up.
# HFI1_MPI_TEST_TIMEOUT (seconds, default 120) bounds each mpirun.

set -euo pipefail

readonly SKIP=77
HFI1_SOFT=${1:?usage: $0 HFI1_SOFT BINDIR [PATTERN...]}
BINDIR=${2:?usage: $0 HFI1_SOFT BINDIR [PATTERN...]}
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "${HFI1_MPI_TEST_INNER:-}" != 1 ]; then
	if ! command -v mpirun >/dev/null; then
		echo "SKIP: mpirun is not installed (Debian: openmpi-bin)"
		exit $SKIP
	fi
	for prog in hfi1_mpibench hfi1_mpichurn hfi1_mrstat; do
		if [ ! -x "$BINDIR/$prog" ]; then
			echo "SKIP: $BINDIR/$prog is not built (Debian: libopenmpi-dev)"
			exit $SKIP
		fi
	done
	HFI1_MPI_TEST_INNER=1 exec bash "$HERE/with_soft_hfi.sh" "$HFI1_SOFT" \
		bash "$0" "$HFI1_SOFT" "$BINDIR" "$@"
fi

TIMEOUT=${HFI1_MPI_TEST_TIMEOUT:-120}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/hfi1-mpi.XXXXXX")
trap 'rm -rf -- "$OUT"' EXIT
PATTERNS=("$@")
PENDING=()

# shellcheck source=lib/pairs.sh
. "$HERE/lib/pairs.sh"

# Each rank's UCX device: rank N on hfi1_N, or every rank on $ONE_DEVICE.
# Written once, run by mpirun before each rank's program.
RANKDEV=$OUT/rank_device.sh
cat >"$RANKDEV" <<'EOF'
#!/bin/sh
export UCX_NET_DEVICES=${ONE_DEVICE:-hfi1_${OMPI_COMM_WORLD_LOCAL_RANK}:1}
exec "$@"
EOF
chmod +x "$RANKDEV"

# mpi LOG [VAR=VALUE...] -- PROGRAM ARGS: run two ranks under hfi1_mrstat
# --json (whose JSON goes to LOG.mrstat); mpirun's output to LOG. Returns
# mpirun's status.
mpi()
{
	local log=$1 envs=()
	shift
	while [ "$1" != -- ]; do
		envs+=(-x "$1")
		shift
	done
	shift
	# The children get hfi1_mrstat's HFI1_STATS_DIR and HFI1_STATS_KEEP
	# from mpirun's environment; -x passes the rest.
	timeout -k 5 "$TIMEOUT" "$BINDIR/hfi1_mrstat" --json -- \
		mpirun --allow-run-as-root --oversubscribe -np 2 \
		--mca pml ucx --mca pml_ucx_devices any \
		-x UCX_TLS=rc_v,self -x UCX_LOG_LEVEL=info \
		${envs[@]+"${envs[@]}"} \
		"$RANKDEV" "$@" >"$log" 2>"$log.err"
}

# Why LOG's run does not show rc_verbs on DEVS (a regex) alone, or shows
# a UCX warning; nothing if it is clean.
ucx_check()
{
	local log=$1 devs=$2 why="" cfg

	cfg=$(grep -h -o 'ep_cfg\[[0-9]*\]: .*' "$log" "$log.err" || true)
	if [ -z "$cfg" ]; then
		why="UCX named no transport"
	elif grep -o '[a-z_]*/[a-z0-9_:]*' <<<"$cfg" |
	     grep -v -q -x -E "rc_verbs/($devs)|self/memory[0-9]*"; then
		why="UCX chose other transports: $(sort -u <<<"$cfg" | tr '\n' ' ')"
	fi
	if grep -q -h -E 'UCX +(WARN|ERROR)' "$log" "$log.err"; then
		why+="${why:+; }UCX warned"
	fi
	echo "$why"
}

# A counter summed over the contexts in LOG.mrstat (hfi1_mrstat's JSON):
# an MR cache counter, or data.NAME for a data counter.
mrstat_sum()
{
	/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
group, _, name = sys.argv[2].rpartition(".")
print(sum(c[group or "counters"][name] for c in d["contexts"]))' \
		"$1.mrstat" "$2"
}

report()
{
	local name=$1 t0=$2 why=$3 log=$4

	if [ -z "$why" ]; then
		echo "PASS: $name ($((SECONDS - t0)) s)"
		passed+=("$name")
		return
	fi
	echo "FAIL: $name ($why)"
	grep -v -h 'UCX  INFO  IB Async event' "$log" "$log.err" |
		sed 's/^/    /' | tail -n 60
	failed+=("$name")
}

# The JSON hfi1_mrstat prints follows the program's own output on stdout.
split_mrstat()
{
	local log=$1

	sed -n '/^{"contexts"/,$p' "$log" >"$log.mrstat"
	sed -i '/^{"contexts"/,$d' "$log"
}

mpibench()
{
	local name=$1 devs=$2 one=$3 log=$OUT/$1 t0=$SECONDS why="" rc=0

	selected "$name" "${PATTERNS[@]}" || return 0
	mpi "$log" ONE_DEVICE="$one" -- "$BINDIR/hfi1_mpibench" --quick || rc=$?
	split_mrstat "$log"
	[ $rc -eq 0 ] || why="mpirun exit $rc"
	grep -q '^corrupt messages: 0$' "$log" ||
		why+="${why:+; }corrupt or missing data"
	why+=$(w=$(ucx_check "$log" "$devs"); echo "${w:+${why:+; }$w}")
	[ "$(mrstat_sum "$log" misses)" -gt 0 ] ||
		why+="${why:+; }libhfi1 registered nothing"
	why+=$(w=$(over_soft_hfi "$log"); echo "${w:+${why:+; }$w}")
	report "$name" "$t0" "$why" "$log"
	[ -n "$why" ] || grep -h '^    ' "$log.data"
}

# Did the data go over the soft HFI? Why not, or nothing: the ranks'
# contexts received and placed at least the bytes hfi1_mpibench says the
# ranks sent each other. Their counters go to LOG.data.
over_soft_hfi()
{
	local log=$1 sent rcv placed

	sent=$(sed -n 's/^bytes sent: \([0-9]*\)$/\1/p' "$log")
	rcv=$(mrstat_sum "$log" data.rcv_bytes)
	placed=$(mrstat_sum "$log" data.placed_bytes)
	printf '    %s bytes sent by the ranks; their contexts received %s, placed %s\n' \
		"${sent:-?}" "$rcv" "$placed" >"$log.data"
	if [ -z "$sent" ]; then
		echo "hfi1_mpibench said no bytes sent"
	elif [ "$rcv" -lt "$sent" ] || [ "$placed" -lt "$sent" ]; then
		echo "the ranks sent $sent bytes, their contexts received $rcv, placed $placed: not all over the soft HFI"
	fi
}

# churn NAME VAR=VALUE...: the churn test; with direct registration
# libhfi1's cache must show misses and invalidations (new memory every
# time: nothing to hit).
churn()
{
	local name=$1 log=$OUT/$1 t0=$SECONDS why="" rc=0 c
	shift

	selected "$name" "${PATTERNS[@]}" || return 0
	mpi "$log" "$@" -- "$BINDIR/hfi1_mpichurn" --quick || rc=$?
	split_mrstat "$log"
	[ $rc -eq 0 ] || why="mpirun exit $rc"
	grep -q '^corrupt messages:   0$' "$log" ||
		why+="${why:+; }corrupt or missing messages"
	why+=$(w=$(ucx_check "$log" 'hfi1_0:1|hfi1_1:1'); echo "${w:+${why:+; }$w}")
	for c in misses invalidations; do
		[ "$c" != misses ] && [[ $name != *direct* ]] && continue
		[ "$(mrstat_sum "$log" "$c")" -gt 0 ] ||
			why+="${why:+; }libhfi1 counted no $c"
	done
	report "$name" "$t0" "$why" "$log"
	[ -n "$why" ] || grep -v -h 'UCX ' "$log" | sed 's/^/    /'
}

# Rank 1 dies (SIGKILL) mid-run. Open MPI 4.1's UCX PML makes its
# endpoints without UCX's peer error handling, so a survivor waiting for
# a message of the dead rank would wait for ever; mpirun sees the rank
# die and ends the job. Nothing may hang: mpirun ends, non-zero, saying
# which rank died, well before the timeout.
peer_killed()
{
	local name=peer_killed log=$OUT/peer_killed t0=$SECONDS why="" rc=0
	local pid i p victim=""

	selected "$name" "${PATTERNS[@]}" || return 0
	mpi "$log" -- "$BINDIR/hfi1_mpichurn" --iters 100000000 &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		[ -z "$victim" ] || break
		sleep 0.1
		for p in $(pgrep -x hfi1_mpichurn); do
			if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null |
				grep -q -x 'OMPI_COMM_WORLD_RANK=1'; then
				victim=$p
			fi
		done
	done
	if [ -z "$victim" ]; then
		wait "$pid" || true
		report "$name" "$t0" "rank 1 never ran" "$log"
		return
	fi
	# Mid-run: connected, messages under way.
	sleep 2
	kill -KILL "$victim"
	t0=$SECONDS
	wait "$pid" || rc=$?
	split_mrstat "$log"
	if [ $rc -eq 0 ]; then
		why="mpirun exit 0 after a rank was killed"
	elif [ $rc -eq 124 ] || [ $((SECONDS - t0)) -ge "$TIMEOUT" ]; then
		why="mpirun hung: ended by the timeout"
	elif ! grep -q -i 'signal 9' "$log" "$log.err"; then
		why="mpirun did not say that rank 1 died"
	fi
	report "$name" "$t0" "$why" "$log"
	[ -n "$why" ] || echo "    mpirun ended $((SECONDS - t0)) s after the kill, exit $rc"
}

mpibench mpibench_two_devices 'hfi1_0:1|hfi1_1:1' ""
mpibench mpibench_one_device 'hfi1_0:1' hfi1_0:1
churn churn_direct UCX_IB_REG_METHODS=direct
churn churn_ucx_cache
peer_killed

pairs_summary mpi
