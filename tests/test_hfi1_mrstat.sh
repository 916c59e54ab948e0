#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# Tests of hfi1_mrstat, the MR cache and data counters tool, against stats
# files that tests/hfi1_stats_writer.c makes with known values (no soft
# HFI).
#
#   tests/test_hfi1_mrstat.sh HFI1_MRSTAT HFI1_STATS_WRITER [PYTHON]
#                                                      (ctest: hfi1_mrstat)
#
# Everything happens in a private HFI1_STATS_DIR. Checks: -p and --json of
# a live process (the MR cache's counters and limits, the data counters),
# the -- CMD mode (children, exit status, signals, its directory removed),
# --clean of stale files (dead pid, start time of another process) but not
# of live ones, bad files skipped with a message (truncated, garbage,
# another version, also a shorter one, a FIFO, a symlink), the next
# context's open removing a dead process's file, and, as root, files user
# nobody makes under the names of root's processes: not shown as theirs,
# not keeping a process from publishing, removed by --clean only when
# their pid is gone (nobody's --clean: only nobody's).
# Prints one line per check and "N passed, N failed"; exits 1 on a failure.

# Checks are shell expressions in single quotes, evaluated by check():
# shellcheck disable=SC2016

set -u

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
MRSTAT=$(readlink -f -- "$1")
WRITER=$(readlink -f -- "$2")
PYTHON=${3:-/usr/bin/python3}

# shellcheck source=lib/checks.sh
. "$HERE/lib/checks.sh"

TMP=$(mktemp -d) || exit 1
DIR=$TMP/stats
mkdir "$DIR"
export HFI1_STATS_DIR=$DIR
unset HFI1_STATS HFI1_STATS_KEEP
HOLDERS=()
cleanup()
{
	local p

	for p in "${HOLDERS[@]}"; do
		kill -TERM "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf -- "$TMP"
}
trap cleanup EXIT

# run ARGS...: run hfi1_mrstat (at most 20 s: a FIFO must not hang it);
# sets OUT, ERR and RC.
run()
{
	OUT=$(timeout 20 "$MRSTAT" "$@" 2>"$TMP/stderr")
	RC=$?
	ERR=$(cat "$TMP/stderr")
}

# hold [--contexts K]: start a writer that keeps its contexts open; once
# its files exist, sets HOLDER and HOLD_PATHS, a file with their paths.
# Each writer prints into a file of its own, which only it creates: the
# redirection happens in the background job, whenever that one runs, so a
# shared file could still hold the previous writer's paths (of files long
# gone) when the loop first reads it.
NHOLD=0
hold()
{
	local want=1 end=$((SECONDS + 30))

	[ "${1:-}" = --contexts ] && want=$2
	NHOLD=$((NHOLD + 1))
	HOLD_PATHS=$TMP/paths.$NHOLD
	"$WRITER" --hold "$@" >"$HOLD_PATHS" &
	HOLDER=$!
	HOLDERS+=("$HOLDER")
	# Until the writer printed a whole line per context.
	while [ "$(grep -c '\.stats$' "$HOLD_PATHS" 2>/dev/null)" != "$want" ]; do
		if ! kill -0 "$HOLDER" 2>/dev/null; then
			echo "    the writer exited before it printed its paths"
			return 1
		fi
		if [ $SECONDS -ge $end ]; then
			echo "    the writer printed no path in 30 s"
			return 1
		fi
		sleep 0.05
	done
}

# json EXPR: $OUT parsed as JSON in j; EXPR (Python) must be true.
json()
{
	"$PYTHON" -c 'import json, sys
j = json.loads(sys.stdin.read())
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" <<<"$OUT" && return 0
	echo "    not so: $1"
	echo "    $OUT" | head -20
	return 1
}

# line_is NAME VALUE: the text output has "  NAME   VALUE".
line_is()
{
	grep -Eq "^  $1 +$2( |\$)" <<<"$OUT" && return 0
	echo "    no line '$1 $2' in:"
	sed 's/^/    /' <<<"$OUT" | head -40
	return 1
}

# patch FILE OFFSET VALUE: write a little-endian u64 into the file.
patch()
{
	"$PYTHON" -c 'import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(struct.pack("<Q", int(sys.argv[3])))' \
		"$1" "$2" "$3"
}

# Offsets in struct hfi1_stats_file.
OFF_VERSION=8 OFF_PID=16 OFF_START=24 OFF_CTX=32

# --- a live process: -p, text and JSON ------------------------------------
if hold --contexts 2; then
	pid=$HOLDER
	run -p "$pid"
	check "-p: exits 0" '[ "$RC" -eq 0 ]'
	check "-p: both contexts" \
		'[ "$(grep -c "^pid $pid context" <<<"$OUT")" -eq 2 ]'
	check "-p: pid, context, device, open" \
		'grep -q "^pid $pid context 0 device hfi1_test (open)" <<<"$OUT"'
	check "-p: hits" 'line_is hits 90 && line_is hits 91'
	check "-p: the other counters" 'line_is misses 10 &&
		line_is evictions 3 && line_is invalidations 4 &&
		line_is invalidated_in_use 1 && line_is failures 2 &&
		line_is entries 7 && line_is idle_entries 5 &&
		line_is pinned_bytes 1048576 && line_is tids_used 256'
	check "-p: hit ratio" 'line_is hit_ratio 0.9000'
	check "-p: limits" 'line_is cache enabled &&
		line_is max_entries 1024 && line_is max_bytes "0 \\(no limit\\)"'
	check "-p: data counters" 'line_is xmit_packets 20 &&
		line_is xmit_bytes 4096 && line_is rcv_packets 30 &&
		line_is rcv_bytes 8192 && line_is placed_bytes 6144'

	run -p "$pid" --json
	check "--json: exits 0" '[ "$RC" -eq 0 ]'
	check "--json: two contexts of the pid" \
		'json "len(j[\"contexts\"]) == 2 and all(c[\"pid\"] == $pid for c in j[\"contexts\"])"'
	check "--json: counters" \
		'json "[c[\"counters\"][\"hits\"] for c in j[\"contexts\"]] == [90, 91] and j[\"contexts\"][0][\"counters\"] == dict(hits=90, misses=10, evictions=3, invalidations=4, invalidated_in_use=1, failures=2, entries=7, idle_entries=5, pinned_bytes=1048576, tids_used=256)"'
	check "--json: data counters" \
		'json "all(c[\"data\"] == dict(xmit_packets=20, xmit_bytes=4096, rcv_packets=30, rcv_bytes=8192, placed_bytes=6144) for c in j[\"contexts\"])"'
	check "--json: context, device, state, ratio, limits" \
		'json "j[\"contexts\"][0][\"context\"] == 0 and j[\"contexts\"][1][\"context\"] == 1 and j[\"contexts\"][0][\"device\"] == \"hfi1_test\" and j[\"contexts\"][0][\"closed\"] is False and abs(j[\"contexts\"][0][\"hit_ratio\"] - 0.9) < 1e-6 and j[\"contexts\"][0][\"limits\"] == dict(enabled=True, max_entries=1024, max_bytes=0)"'

	run
	check "no -p: the live process is listed" \
		'[ "$RC" -eq 0 ] && grep -q "^pid $pid context 1" <<<"$OUT"'
	run -d "$DIR" -p 1
	check "-p of a process without contexts: exit 1, says so" \
		'[ "$RC" -eq 1 ] && [ -z "$OUT" ] && grep -q "no live contexts" <<<"$ERR"'
	run -p "$pid" --json -d "$TMP"
	check "-d: another directory has none" \
		'[ "$RC" -eq 1 ] && json "j == {\"contexts\": []}"'

	kill -TERM "$pid"
	wait "$pid"
	check "the writer's close removed its files" \
		'[ -z "$(ls -A "$DIR")" ]'
else
	fail "the writer holds its contexts"
fi

# --- a run: -- CMD ----------------------------------------------------------
run --json -- "$WRITER" --fork --exit 3
check "-- CMD: CMD's exit status" '[ "$RC" -eq 3 ]'
check "-- CMD: the parent's context and the child's, closed" \
	'json "len(j[\"contexts\"]) == 2 and all(c[\"closed\"] for c in j[\"contexts\"]) and len({c[\"pid\"] for c in j[\"contexts\"]}) == 2 and sorted(c[\"counters\"][\"hits\"] for c in j[\"contexts\"]) == [90, 1000]"'
check "-- CMD: its directory is removed" '[ -z "$(ls -A "$DIR")" ]'

HFI1_STATS=0 run -- "$WRITER" --contexts 3
check "-- CMD: text, all contexts, even with HFI1_STATS=0 outside" \
	'[ "$RC" -eq 0 ] && [ "$(grep -c "^pid .* (closed)" <<<"$OUT")" -eq 3 ] &&
	 line_is hits 92'
run -- "$WRITER" --no-close
check "-- CMD: a CMD that does not close is still reported" \
	'[ "$RC" -eq 0 ] && grep -q "(open)" <<<"$OUT" && line_is hits 90'
cd "$TMP" || exit 1
run -d stats -- sh -c 'cd / && exec "$0"' "$WRITER"
cd - >/dev/null || exit 1
check "-- CMD: a relative DIR, and a CMD that changes directory" \
	'[ "$RC" -eq 0 ] && line_is hits 90 && [ -z "$(ls -A "$DIR")" ]'
run -- sh -c 'kill -TERM $$'
check "-- CMD: killed by SIGTERM gives 143" '[ "$RC" -eq 143 ]'
run -- "$TMP/no-such-command"
check "-- CMD: a missing command gives 127" \
	'[ "$RC" -eq 127 ] && grep -q "no-such-command" <<<"$ERR"'
run -- sh -c 'exit 0'
check "-- CMD: no contexts, exit 0, says so" \
	'[ "$RC" -eq 0 ] && grep -q "no contexts" <<<"$ERR"'
check "-- CMD: no directory left behind" '[ -z "$(ls -A "$DIR")" ]'
run -d "$TMP/missing" -- true
check "-- CMD: an unusable directory fails before running" \
	'[ "$RC" -eq 1 ] && grep -q "missing" <<<"$ERR"'

# --- stale files and --clean ----------------------------------------------
# The live process first: a context's open removes the files of dead
# processes, and this one's must not take those planted below.
if hold; then
	live=$(basename -- "$(head -1 "$HOLD_PATHS")")
	"$WRITER" --no-close
	dead=$(ls "$DIR" | grep -vxF -- "$live")
	check "a process that dies without closing leaves its file" \
		'[ "$(wc -w <<<"$dead")" -eq 1 ]'
	# Its copy under a live pid (this shell's) with another start time:
	# the pid was reused.
	reused=libhfi1.$$.0.stats
	cp -- "$DIR/$dead" "$DIR/$reused"
	patch "$DIR/$reused" $OFF_PID $$
	patch "$DIR/$reused" $OFF_START 1
	patch "$DIR/$reused" $OFF_CTX 0
	# Half made (no magic yet) by a live process, and by a dead one.
	head -c 296 /dev/zero >"$DIR/libhfi1.$$.1.stats"
	deadpid=${dead#libhfi1.}
	deadpid=${deadpid%%.*}
	head -c 296 /dev/zero >"$DIR/libhfi1.$deadpid.5.stats"
	run
	check "stale files are not listed, and are counted" \
		'[ "$RC" -eq 0 ] && [ "$(grep -c "^pid " <<<"$OUT")" -eq 1 ] &&
		 grep -q "^pid $HOLDER " <<<"$OUT" &&
		 grep -q "2 stale file" <<<"$ERR"'
	run --clean
	check "--clean: removes the dead pid's and the reused pid's" \
		'[ "$RC" -eq 0 ] && [ ! -e "$DIR/$dead" ] &&
		 [ ! -e "$DIR/$reused" ] && grep -q "3 stale" <<<"$OUT"'
	check "--clean: removes a dead process's half-made file" \
		'[ ! -e "$DIR/libhfi1.$deadpid.5.stats" ]'
	check "--clean: keeps a live process's files, whole or half made" \
		'[ -e "$DIR/$live" ] && [ -e "$DIR/libhfi1.$$.1.stats" ]'
	rm -f -- "$DIR/libhfi1.$$.1.stats"
else
	fail "the writer holds its context"
fi

# --- the next context's open removes the files of dead processes ----------
OPEN_DIR=$TMP/open
mkdir "$OPEN_DIR"
HFI1_STATS_DIR=$OPEN_DIR "$WRITER" --no-close
first=$(ls "$OPEN_DIR")
HFI1_STATS_DIR=$OPEN_DIR "$WRITER" --no-close
second=$(ls "$OPEN_DIR" | grep -vxF -- "$first")
check "the next context's open removes a dead process's file" \
	'[ -n "$first" ] && [ ! -e "$OPEN_DIR/$first" ] &&
	 [ "$(wc -w <<<"$second")" -eq 1 ]'
HFI1_STATS_KEEP=1 HFI1_STATS_DIR=$OPEN_DIR "$WRITER" --no-close
check "... but not with HFI1_STATS_KEEP=1" \
	'[ -e "$OPEN_DIR/$second" ] && [ "$(ls "$OPEN_DIR" | wc -l)" -eq 2 ]'

# --- bad files are skipped, with a message --------------------------------
if [ -n "${live:-}" ] && [ -e "$DIR/$live" ]; then
	head -c 20 -- "$DIR/$live" >"$DIR/libhfi1.$$.10.stats"
	head -c 296 /dev/urandom >"$DIR/libhfi1.$$.11.stats"
	cp -- "$DIR/$live" "$DIR/libhfi1.$$.12.stats"
	patch "$DIR/libhfi1.$$.12.stats" $OFF_VERSION 99
	# Another version's layout, shorter than ours: version 98, 100 bytes.
	head -c 100 -- "$DIR/$live" >"$DIR/libhfi1.$$.17.stats"
	patch "$DIR/libhfi1.$$.17.stats" $OFF_VERSION $((98 | 100 << 32))
	mkfifo "$DIR/libhfi1.$$.13.stats"
	ln -s -- "$DIR/$live" "$DIR/libhfi1.$$.14.stats"
	cp -- "$DIR/$live" "$DIR/libhfi1.$$.15.stats" # header says another pid
	cp -- "$DIR/$live" "$DIR/libhfi1.0.16.stats"
	echo junk >"$DIR/libhfi1.junk.stats"
	run
	check "bad files: the good one is still listed, exit 0" \
		'[ "$RC" -eq 0 ] && [ "$(grep -c "^pid " <<<"$OUT")" -eq 1 ] &&
		 grep -q "^pid $HOLDER " <<<"$OUT"'
	size=$(stat -c %s -- "$DIR/$live")
	check "bad files: truncated" \
		'grep -q "libhfi1.$$.10.stats: truncated (20 of $size bytes), skipped" <<<"$ERR"'
	check "bad files: garbage" \
		'grep -q "libhfi1.$$.11.stats: bad magic, skipped" <<<"$ERR"'
	check "bad files: another version" \
		'grep -q "libhfi1.$$.12.stats: version 99.*skipped" <<<"$ERR"'
	check "bad files: another version, shorter: its version, not truncated" \
		'grep -q "libhfi1.$$.17.stats: version 98, size 100: this tool reads version [0-9]*, size $size, skipped" <<<"$ERR"'
	check "bad files: a FIFO" \
		'grep -q "libhfi1.$$.13.stats: not a regular file, skipped" <<<"$ERR"'
	check "bad files: a symlink is not followed" \
		'grep -q "libhfi1.$$.14.stats: .*skipped" <<<"$ERR"'
	check "bad files: a header not matching the name" \
		'grep -q "libhfi1.$$.15.stats: header .* does not match" <<<"$ERR" &&
		 grep -q "libhfi1.0.16.stats: not a libhfi1" <<<"$ERR" &&
		 grep -q "libhfi1.junk.stats: not a libhfi1" <<<"$ERR"'
	run --json
	check "bad files: --json still parses" \
		'[ "$RC" -eq 0 ] && json "len(j[\"contexts\"]) == 1"'
	run --clean
	check "--clean: leaves bad files of live pids and odd names alone" \
		'[ "$RC" -eq 0 ] && [ -e "$DIR/libhfi1.$$.11.stats" ] &&
		 [ -e "$DIR/libhfi1.junk.stats" ] && [ -e "$DIR/$live" ]'
else
	fail "a live file to spoil"
fi

# --- another user's files under a process's names -------------------------
# User nobody makes files in a directory anyone may write, as /dev/shm is,
# under the names of root's processes: of one that runs, and of one that
# is about to start, with the start time it will have (exec keeps it).

as_nobody()
{
	if command -v setpriv >/dev/null; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
	else
		runuser -u nobody -- "$@"
	fi
}

# forge DIR PID START N...: as user nobody, DIR/libhfi1.PID.N.stats for
# each N, whole files that say PID, START and N, with 666 hits.
forge()
{
	as_nobody "$PYTHON" -c 'import os, struct, sys
d, pid, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for n in map(int, sys.argv[4:]):
    head = struct.pack("<8sIIQQQ64sQQQQ", b"HFI1STAT", 2, 296, pid, start,
                       n, b"hfi1_test", 0, 1, 1024, 0)
    body = struct.pack("<10Q5Q5Q", 666, 1, *[0] * 8, *[0] * 5,
                       666, 666, 666, 666, 666)
    fd = os.open(os.path.join(d, "libhfi1.%d.%d.stats" % (pid, n)),
                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, head + body)
    os.close(fd)' "$@"
}

start_time()
{
	awk '{ print $22 }' "/proc/$1/stat"
}

if [ "$(id -u)" -ne 0 ] || ! id nobody >/dev/null 2>&1; then
	skip "another user's files: needs root and a user nobody"
else
	chmod 0755 "$TMP"
	SHM=$TMP/shm
	mkdir -m 1777 "$SHM"
	NOBODY=$(id -u nobody)

	export HFI1_STATS_DIR=$SHM
	if hold; then
		forge "$SHM" "$HOLDER" "$(start_time "$HOLDER")" 7
		run -p "$HOLDER"
		check "a file another user made for a running process is not shown" \
			'[ "$RC" -eq 0 ] && [ "$(grep -c "^pid " <<<"$OUT")" -eq 1 ] &&
			 line_is hits 90 && ! grep -q 666 <<<"$OUT"'
		check "... but skipped, with a message that says whose it is" \
			'grep -q "libhfi1.$HOLDER.7.stats: owned by uid $NOBODY, not by uid 0, the user of pid $HOLDER, skipped" <<<"$ERR"'
	else
		fail "the writer holds its context"
	fi

	# Every name the writer would try, taken before it starts.
	mkfifo "$TMP/go"
	bash -c 'read -r _ <"$1"; exec "$2" --hold' _ "$TMP/go" "$WRITER" \
		>"$TMP/victim.out" 2>"$TMP/victim.err" &
	VICTIM=$!
	HOLDERS+=("$VICTIM")
	# shellcheck disable=SC2046 # the numbers, one word each
	forge "$SHM" "$VICTIM" "$(start_time "$VICTIM")" $(seq 0 63)
	echo go >"$TMP/go"
	end=$((SECONDS + 30))
	while [ ! -s "$TMP/victim.out" ] && [ $SECONDS -lt $end ] &&
		kill -0 "$VICTIM" 2>/dev/null; do
		sleep 0.05
	done
	vpath=$(head -1 "$TMP/victim.out")
	check "a process whose names another user took still publishes" \
		'[[ $vpath == "$SHM/libhfi1.$VICTIM.0."*".stats" ]] &&
		 [ "$(stat -c %u:%a -- "$vpath")" = 0:600 ] ||
		 { echo "    the writer says: $vpath $(cat "$TMP/victim.err")"; false; }'
	check "... and logs where its counters went" \
		'grep -qF "libhfi1.$VICTIM.0.stats belongs to uid $NOBODY, not to this process: its MR cache counters are in $vpath" "$TMP/victim.err"'
	run -p "$VICTIM" --json
	check "... where hfi1_mrstat -p finds them, and not the planted ones" \
		'[ "$RC" -eq 0 ] && json "len(j[\"contexts\"]) == 1 and j[\"contexts\"][0][\"file\"] == \"$vpath\" and j[\"contexts\"][0][\"counters\"][\"hits\"] == 90" &&
		 [ "$(grep -c "owned by uid $NOBODY" <<<"$ERR")" -eq 64 ]'

	# What goes when: the writer that was about to start is gone now, and
	# so is a process of root's that did not close.
	kill -TERM "$VICTIM"
	wait "$VICTIM"
	"$WRITER" --no-close
	rdead=$(ls "$SHM" | grep -vF -e ".$HOLDER." -e ".$VICTIM.")
	check "a context's open leaves another user's files" \
		'[ "$(ls "$SHM" | grep -c "^libhfi1\.$VICTIM\.")" -eq 64 ]'
	as_nobody ln -s -- "$SHM/$rdead" "$SHM/libhfi1.$VICTIM.99.stats"
	forge "$SHM" "$HOLDER" 1 8
	mkdir -p "$TMP/bin" && cp -- "$MRSTAT" "$TMP/bin/" &&
		chmod 0755 "$TMP/bin/hfi1_mrstat"
	OUT=$(as_nobody "$TMP/bin/hfi1_mrstat" --clean 2>"$TMP/stderr")
	RC=$?
	ERR=$(cat "$TMP/stderr")
	check "--clean by another user removes that user's files of dead processes" \
		'[ "$RC" -eq 0 ] && grep -q "^64 stale" <<<"$OUT" &&
		 [ -z "$(ls "$SHM" | grep "^libhfi1\.$VICTIM\.[0-9]*\.stats$" | grep -v "\.99\.")" ] ||
		 { echo "    $OUT $ERR"; false; }'
	check "... and leaves root's, a link, and those of live pids" \
		'[ -f "$SHM/$rdead" ] && [ -L "$SHM/libhfi1.$VICTIM.99.stats" ] &&
		 [ -f "$SHM/libhfi1.$HOLDER.7.stats" ] &&
		 [ -f "$SHM/libhfi1.$HOLDER.8.stats" ]'
	run --clean
	check "--clean by root removes root's file of a dead process" \
		'[ "$RC" -eq 0 ] && [ ! -e "$SHM/$rdead" ] && grep -q "^1 stale" <<<"$OUT"'
	check "... but not a link, nor another user's files under a live pid" \
		'[ -L "$SHM/libhfi1.$VICTIM.99.stats" ] &&
		 [ -f "$SHM/libhfi1.$HOLDER.7.stats" ] &&
		 [ -f "$SHM/libhfi1.$HOLDER.8.stats" ] &&
		 [ -f "$(head -1 "$HOLD_PATHS")" ]'
	export HFI1_STATS_DIR=$DIR
fi

# --- usage ------------------------------------------------------------------
run --clean -p 1
check "usage: --clean takes no -p" '[ "$RC" -eq 2 ]'
run -p abc
check "usage: a bad pid" '[ "$RC" -eq 2 ] && grep -q "bad pid" <<<"$ERR"'
run --help
check "usage: --help" '[ "$RC" -eq 0 ] && grep -q "^usage:" <<<"$OUT"'

finish
