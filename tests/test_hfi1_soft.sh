#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# Tests of hfi1-soft, the soft HFI bring-up tool (Documentation/soft-hfi.md).
#
#   tests/test_hfi1_soft.sh [path/to/hfi1-soft]     (ctest: hfi1_soft_bringup)
#
# Everything happens in a private HFI1_SOFT_RUNDIR, so a soft HFI the user
# already has up is left alone; the /dev/infiniband nodes made here are
# removed again at exit. Checks that need root are skipped without it.
# Prints one line per check and "N passed, N failed"; exits 1 on a failure.

# Checks are shell expressions in single quotes, evaluated by check():
# shellcheck disable=SC2016,SC2034

set -u

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
HFI1_SOFT=$(readlink -f -- "${1:-$HERE/../build/bin/hfi1-soft}")
DEVDIR=/dev/infiniband

# shellcheck source=lib/checks.sh
. "$HERE/lib/checks.sh"

# The tests bring up their own devices.
unset SYSFS_PATH RDMAV_DRIVERS

# run ARGS...: run hfi1-soft; sets OUT, ERR and RC.
run()
{
	OUT=$("$HFI1_SOFT" "$@" 2>"$TMP/stderr")
	RC=$?
	ERR=$(cat "$TMP/stderr")
}

# The file's value (without its newline) equals $2.
value_is()
{
	[ -f "$1" ] && [ "$(cat -- "$1")" = "$2" ] && return 0
	echo "    $1: '$(cat -- "$1" 2>&1)', expected '$2'"
	return 1
}

# Every message on stderr carries the "hfi1-soft: " prefix and says $1.
says()
{
	[ -n "$ERR" ] && ! grep -qv '^hfi1-soft: ' <<<"$ERR" &&
		grep -qi -- "$1" <<<"$ERR" && return 0
	echo "    stderr: $ERR"
	return 1
}

failed_cleanly()
{
	[ "$RC" -eq 1 ] && [ -z "$OUT" ] && says "$1"
}

devdir_listing()
{
	if [ -d "$DEVDIR" ]; then
		ls -A -- "$DEVDIR"
	else
		echo "(no $DEVDIR)"
	fi
}

# What was in /dev/infiniband before is still there, and no node this test
# saw made is left. (Other soft HFIs may come and go meanwhile: ctest -j.)
devdir_intact()
{
	local entry node

	if [ "$DEV_BEFORE" = "(no $DEVDIR)" ]; then
		[ ! -d "$DEVDIR" ] || [ -n "$(ls -A -- "$DEVDIR")" ] || return 1
	else
		while IFS= read -r entry; do
			[ -z "$entry" ] || [ -e "$DEVDIR/$entry" ] ||
				[ -L "$DEVDIR/$entry" ] || return 1
		done <<<"$DEV_BEFORE"
	fi
	for node in "${MADE_NODES[@]}"; do
		[ ! -e "$node" ] || return 1
	done
}

# A fingerprint of the rundir: every path, its mode and inode, and every
# file's content; plus the nodes made here.
snapshot()
{
	local node

	(cd -- "$RUNDIR" && find . -printf '%p %m %i\n' | sort &&
	 find . -type f -print0 | sort -z | xargs -0 cat)
	for node in "${MADE_NODES[@]}"; do
		stat -c '%n %i %t:%T %a' -- "$node" 2>/dev/null ||
			echo "$node: none"
	done
}

uverbs_of()
{
	sed -n 's/.*uverbs=\([0-9]*\).*/\1/p' "$RUNDIR/devices/$1" 2>/dev/null
}

as_nobody()
{
	if command -v setpriv >/dev/null; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
	else
		runuser -u nobody -- "$@"
	fi
}

# ---------------------------------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hfi1-soft-test.XXXXXX") || exit 1
chmod 0755 "$TMP"
# Not made yet: up makes it, and the last down must remove it.
RUNDIR=$TMP/run
export HFI1_SOFT_RUNDIR=$RUNDIR
# down removes the MR cache stats files of dead processes: here, only those
# this test makes, never the machine's (/dev/shm). Anyone may write it.
STATS=$TMP/stats
mkdir -m 1777 "$STATS"
export HFI1_STATS_DIR=$STATS
MADE_NODES=()

cleanup()
{
	local node

	for dir in "$RUNDIR" "$TMP/it's a dir" "$TMP/nobody-run" "$TMP/pre" \
		   "$TMP/victim" "$TMP/sticky/run2"; do
		[ -d "$dir" ] &&
			HFI1_SOFT_RUNDIR=$dir "$HFI1_SOFT" down >/dev/null 2>&1
	done
	# Whatever a broken hfi1-soft left: only the nodes seen made here.
	for node in "${MADE_NODES[@]}"; do
		[ -c "$node" ] && [ "$(stat -c %t:%T "$node")" = 1:3 ] &&
			rm -f -- "$node"
	done
	rm -rf -- "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "hfi1-soft: $HFI1_SOFT"
echo "rundir:    $RUNDIR"
if [ ! -x "$HFI1_SOFT" ]; then
	fail "$HFI1_SOFT is not an executable (build it first)"
	echo "$PASSED passed, $FAILED failed"
	exit 1
fi
DEV_BEFORE=$(devdir_listing)

# --- what needs no root -----------------------------------------------------

run --help
check "--help prints the usage" \
	'[ "$RC" -eq 0 ] && grep -q "hfi1-soft up" <<<"$OUT"'
run frobnicate
check "an unknown command fails with a message" 'failed_cleanly unknown'
# refused_args DESCRIPTION WANT ARGS...: hfi1-soft ARGS fails cleanly,
# saying WANT.
refused_args()
{
	local desc=$1

	WANT=$2
	shift 2
	run "$@"
	check "$desc" 'failed_cleanly "$WANT"'
}
refused_args "up --name mlx5_0 fails: names are hfi1_N" \
	"hfi1_N" up --name mlx5_0
refused_args "up --name hfi1_256 fails: the index is one byte" \
	255 up --name hfi1_256
refused_args "up --name hfi1_01 fails: one name for one index" \
	"leading zeros" up --name hfi1_01
refused_args "up --lid 0 fails: LIDs are 1..0xbfff" \
	0xbfff up --lid 0
refused_args "up --lid 0xc000 fails: multicast LIDs are refused" \
	0xbfff up --lid 0xc000
refused_args "up --lid two fails" \
	LID up --lid two
refused_args "up --expected-count 12 fails: entries come in groups of 8" \
	"multiple of 8" up --expected-count 12
refused_args "up --expected-count 4096 fails: at most 2048" \
	2048 up --expected-count 4096
# Numbers the shell's arithmetic cannot take fail as cleanly as the others.
refused_args "up --expected-count 99999999999999999999 fails cleanly" \
	2048 up --expected-count 99999999999999999999
refused_args "up --expected-count 09 fails cleanly: decimal 9, not bad octal" \
	"multiple of 8" up --expected-count 09
refused_args "up --expected-count 010 fails: ten, not octal 8" \
	"multiple of 8" up --expected-count 010
refused_args "up --lid 99999999999999999999 fails: out of range" \
	0xbfff up --lid 99999999999999999999
refused_args "up --lid 0x10000000000000001 fails: out of range, not 1" \
	0xbfff up --lid 0x10000000000000001
run status
check "status with nothing up says so" \
	'[ "$RC" -eq 0 ] && [ "$OUT" = "no soft HFI devices" ]'
run down
check "down of nothing is no error" '[ "$RC" -eq 0 ] && [ -z "$OUT" ]'
check "nothing made so far" '[ ! -e "$RUNDIR" ]'

# Copied where user nobody can read it, whatever the build tree's modes.
mkdir -p "$TMP/bin" && cp -- "$HFI1_SOFT" "$TMP/bin/hfi1-soft" &&
	chmod 0755 "$TMP/bin/hfi1-soft"
if [ "$(id -u)" -ne 0 ]; then
	run up
	check "up as $(id -un) fails, asking for root" 'failed_cleanly "needs root"'
	check "... and leaves nothing behind" \
		'[ ! -e "$RUNDIR" ] && devdir_intact'
	skip "the checks that bring up devices need root"
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit
fi

OUT=$(as_nobody env HFI1_SOFT_RUNDIR="$TMP/nobody-run" \
	"$TMP/bin/hfi1-soft" up 2>"$TMP/stderr")
RC=$?
ERR=$(cat "$TMP/stderr")
check "up as nobody fails, asking for root" 'failed_cleanly "needs root"'
check "... and leaves nothing behind" \
	'[ ! -e "$TMP/nobody-run" ] && devdir_intact'

HFI1_SOFT_RUNDIR=/proc/hfi1-soft-test "$HFI1_SOFT" up \
	>"$TMP/stdout" 2>"$TMP/stderr"
RC=$? OUT=$(cat "$TMP/stdout") ERR=$(cat "$TMP/stderr")
check "up in a rundir it cannot write fails clearly" \
	'failed_cleanly "cannot create /proc/hfi1-soft-test"'
check "... and makes no device node" \
	'devdir_intact'

# --- up: the layout ---------------------------------------------------------

run up
UP_OUT=$OUT
check "up exits 0" '[ "$RC" -eq 0 ]'
check "up prints only the two export lines on stdout" \
	'[ "$(wc -l <<<"$OUT")" -eq 2 ] &&
	      grep -q "^export SYSFS_PATH=" <<<"$OUT" &&
	      grep -q "^export RDMAV_DRIVERS=" <<<"$OUT"'
check "up reports on stderr" 'says "hfi1_0 is up"'
N0=$(uverbs_of hfi1_0)
[ -n "$N0" ] && MADE_NODES+=("$DEVDIR/uverbs$N0")

IB=$RUNDIR/sys/class/infiniband/hfi1_0
UV=$RUNDIR/sys/class/infiniband_verbs/uverbs$N0
GUID0=0011:7501:0100:0001
check "devices/hfi1_0 records uverbs, LID and GUID" \
	'value_is "$RUNDIR/devices/hfi1_0" "uverbs=$N0 lid=1 guid=$GUID0"'
check "uverbs$N0 was not there before" \
	'! grep -qx "uverbs$N0" <<<"$DEV_BEFORE"'
check "$DEVDIR/uverbs$N0 is a char device 1:3, mode 0666" \
	'[ -c "$DEVDIR/uverbs$N0" ] &&
	      [ "$(stat -c "%t:%T %a" "$DEVDIR/uverbs$N0")" = "1:3 666" ]'
layout_ok()
{
	local ok=0 i want

	value_is "$RUNDIR/sys/class/infiniband_verbs/abi_version" 6 || ok=1
	value_is "$UV/ibdev" hfi1_0 || ok=1
	value_is "$UV/dev" 1:3 || ok=1
	value_is "$UV/abi_version" 2 || ok=1
	value_is "$IB/node_type" "1: CA" || ok=1
	value_is "$IB/node_guid" "$GUID0" || ok=1
	value_is "$IB/sys_image_guid" "$GUID0" || ok=1
	value_is "$IB/node_desc" "$(uname -n) hfi1_0" || ok=1
	value_is "$IB/fw_ver" 1.27.0 || ok=1
	value_is "$IB/hw_rev" 0 || ok=1
	value_is "$IB/board_id" "libhfi1 soft HFI" || ok=1
	value_is "$IB/device/modalias" softhfi:hfi1_0 || ok=1
	value_is "$IB/device/rundir" "$RUNDIR" || ok=1
	value_is "$IB/softhfi/expected_count" 2048 || ok=1
	value_is "$IB/softhfi/user_contexts" "$(nproc)" || ok=1
	value_is "$IB/softhfi/cache_size_mb" 256 || ok=1
	value_is "$IB/softhfi/contig_pages" 512 || ok=1
	value_is "$IB/ports/1/lid" 0x1 || ok=1
	value_is "$IB/ports/1/sm_lid" 0x1 || ok=1
	value_is "$IB/ports/1/lid_mask_count" 0 || ok=1
	value_is "$IB/ports/1/sm_sl" 0 || ok=1
	grep -qE '^0x[0-9a-f]{8}$' "$IB/ports/1/cap_mask" || ok=1
	value_is "$IB/ports/1/rate" "100 Gb/sec (4X EDR)" || ok=1
	value_is "$IB/ports/1/link_layer" InfiniBand || ok=1
	value_is "$IB/ports/1/state" "4: ACTIVE" || ok=1
	value_is "$IB/ports/1/phys_state" "5: LinkUp" || ok=1
	value_is "$IB/ports/1/gids/0" "fe80:0000:0000:0000:$GUID0" || ok=1
	for ((i = 1; i < 5; i++)); do
		value_is "$IB/ports/1/gids/$i" \
			0000:0000:0000:0000:0000:0000:0000:0000 || ok=1
	done
	for ((i = 0; i < 16; i++)); do
		want=0x0000
		[ $i -ne 0 ] || want=0xffff
		value_is "$IB/ports/1/pkeys/$i" "$want" || ok=1
	done
	return $ok
}
check "the tree holds every file of Documentation/soft-hfi.md" layout_ok
check "directories are 0755, files 0644" \
	'[ -z "$(find "$RUNDIR" -path "$RUNDIR/fabric" -prune -o \
			\( -type d ! -perm 0755 \) -print -o \
			\( -type f ! -perm 0644 \) -print)" ]'
check "the fabric directory is sticky and everyone's, as /tmp" \
	'[ "$(stat -c %a "$RUNDIR/fabric")" = 1777 ]'
check "no temporary file is left" \
	'[ -z "$(find "$RUNDIR" -name ".*")" ]'
check "user nobody can read the tree and open the node" \
	'as_nobody sh -c "cat \"\$1/ports/1/state\" >/dev/null && : <>\"\$2\"" \
		sh "$IB" "$DEVDIR/uverbs$N0"'

# --- up is idempotent; conflicts fail ---------------------------------------

SNAP=$(snapshot)
run up
check "up again: exit 0 and the same lines" \
	'[ "$RC" -eq 0 ] && [ "$OUT" = "$UP_OUT" ]'
run up --name hfi1_0 --lid 1
check "up --name hfi1_0 --lid 1 again: exit 0 and the same lines" \
	'[ "$RC" -eq 0 ] && [ "$OUT" = "$UP_OUT" ]'
OUT=$(as_nobody env HFI1_SOFT_RUNDIR="$RUNDIR" "$TMP/bin/hfi1-soft" up \
	2>/dev/null)
check "up of a device that is up works for any user" \
	'[ "$(grep SYSFS_PATH <<<"$OUT")" = "$(grep SYSFS_PATH <<<"$UP_OUT")" ]'
run up --name hfi1_0 --lid 5
check "up --name hfi1_0 --lid 5 fails: hfi1_0 has LID 1" \
	'failed_cleanly "hfi1_0 is up with LID 0x1"'
run up --name hfi1_1 --lid 1
check "up --name hfi1_1 --lid 1 fails: LID 1 is hfi1_0's" \
	'failed_cleanly "LID 0x1 is taken by hfi1_0"'
check "nothing changed" '[ "$(snapshot)" = "$SNAP" ]'

# --- a second device --------------------------------------------------------

run up --name hfi1_1
UP1_OUT=$OUT
N1=$(uverbs_of hfi1_1)
[ -n "$N1" ] && MADE_NODES+=("$DEVDIR/uverbs$N1")
check "up --name hfi1_1 takes the next LID (2)" \
	'[ "$RC" -eq 0 ] &&
	      value_is "$RUNDIR/sys/class/infiniband/hfi1_1/ports/1/lid" 0x2'
check "hfi1_1's GUID is 0011:7501:0101:0002" \
	'value_is "$RUNDIR/sys/class/infiniband/hfi1_1/node_guid" \
		0011:7501:0101:0002'
check "hfi1_1 has its own node uverbs$N1" \
	'[ -n "$N1" ] && [ "$N1" != "$N0" ] && [ -c "$DEVDIR/uverbs$N1" ] &&
	      value_is "$RUNDIR/sys/class/infiniband_verbs/uverbs$N1/ibdev" hfi1_1'
check "both devices print the same environment" \
	'[ "$UP1_OUT" = "$UP_OUT" ]'

env_ok()
{
	(
		eval "$UP_OUT" || exit 1
		[ "$SYSFS_PATH" = "$RUNDIR/sys" ] || exit 1
		case $RDMAV_DRIVERS in
		/*/libhfi1) ;;
		*) exit 1 ;;
		esac
		top=$(cd -- "$(dirname -- "$HFI1_SOFT")/.." && pwd -P)
		if [ -e "$top/lib/libhfi1-rdmav34.so" ]; then
			[ "$RDMAV_DRIVERS" = "$top/lib/libhfi1" ] || exit 1
		fi
		[ "$(printenv SYSFS_PATH)" = "$RUNDIR/sys" ]
	)
}
check "eval of up's output exports SYSFS_PATH and RDMAV_DRIVERS" env_ok

LIB=$(cd -- "$(dirname -- "$HFI1_SOFT")/.." && pwd -P)/lib/libhfi1-rdmav34.so
if ! command -v ibv_devices >/dev/null; then
	skip "ibv_devices lists the soft HFIs: no ibv_devices (ibverbs-utils)"
elif [ ! -e "$LIB" ]; then
	skip "ibv_devices lists the soft HFIs: the provider is not built ($LIB)"
elif [ -d /sys/module/ib_core ]; then
	skip "ibv_devices lists the soft HFIs: the kernel has RDMA netlink, so libibverbs ignores SYSFS_PATH"
else
	DEVICES=$(eval "$UP_OUT"; timeout 30 ibv_devices 2>&1)
	check "ibv_devices lists hfi1_0 and hfi1_1 with their GUIDs" \
		'grep -qE "hfi1_0[[:space:]]+0011750101000001" <<<"$DEVICES" &&
		      grep -qE "hfi1_1[[:space:]]+0011750101010002" <<<"$DEVICES" ||
		      { echo "$DEVICES" | sed "s/^/    /"; false; }'

	# The provider takes the state only from a tree no other user can
	# change (softdev.c): root's ibv_devinfo on hfi1_1 (LID 2), its tree
	# made writable to others in one way after another, each undone.
	devinfo()
	{
		(eval "$UP_OUT"; [ -z "${1:-}" ] || SYSFS_PATH=$1
		 VERBS_LOG_LEVEL=3 VERBS_LOG_FILE=$TMP/verbs.log \
			timeout 30 ibv_devinfo -d hfi1_1 2>&1)
	}
	# provider_refuses PATH WHY [SYSFS_PATH]: ibv_devinfo fails, shows
	# no forged LID (0x99) and the provider's log says PATH WHY.
	provider_refuses()
	{
		local out

		: >"$TMP/verbs.log"
		if out=$(devinfo "${3:-}"); then
			echo "    ibv_devinfo did not fail: $out"
			return 1
		fi
		! grep -qE "port_lid:[[:space:]]+153$" <<<"$out" ||
			{ echo "    the forged LID was shown"; return 1; }
		grep -qF -- "refusing the soft HFI's state: $1 $2" \
			"$TMP/verbs.log" && return 0
		echo "    log: $(cat "$TMP/verbs.log")"
		return 1
	}
	P1=$RUNDIR/sys/class/infiniband/hfi1_1/ports/1
	check "root's ibv_devinfo shows hfi1_1's LID from the tree" \
		'devinfo | grep -qE "port_lid:[[:space:]]+2$"'
	chown nobody "$P1"
	as_nobody sh -c 'echo 0x99 >"$1/lid.new" && mv "$1/lid.new" "$1/lid"' \
		sh "$P1"
	check "... not when nobody owns ports/1 and forged the LID there" \
		'provider_refuses "$P1" "is owned by another user (uid $(id -u nobody)"'
	chown root "$P1" "$P1/lid" && echo 0x2 >"$P1/lid"
	chmod 0666 "$P1/lid"
	check "... nor when the LID file is writable by others" \
		'provider_refuses "$P1/lid" "is writable by group or others"'
	chmod 0644 "$P1/lid"
	mv "$P1/lid" "$TMP/lid" && echo 0x99 >"$TMP/forged" &&
		ln -s "$TMP/forged" "$P1/lid"
	check "... nor when it is a symlink" \
		'provider_refuses "$P1/lid" "is a symlink"'
	rm -f "$P1/lid" && mv "$TMP/lid" "$P1/lid"
	chown nobody "$RUNDIR/sys"
	check "... nor when nobody owns \$SYSFS_PATH" \
		'provider_refuses "$RUNDIR/sys" "is owned by another user"'
	chown root "$RUNDIR/sys"
	chmod o+w "$RUNDIR"
	check "... nor when the rundir is writable by others" \
		'provider_refuses "$RUNDIR" "is writable by group or others"'
	chmod o-w "$RUNDIR"
	ln -s run "$TMP/runlink"
	check "... nor through a symlink to the rundir" \
		'provider_refuses "$TMP/runlink" "is a symlink" "$TMP/runlink/sys"'
	rm -f "$TMP/runlink"
	chmod 1777 "$TMP"
	check "... but it does with a sticky, world-writable directory above" \
		'devinfo | grep -qE "port_lid:[[:space:]]+2$"'
	chmod 0755 "$TMP"
fi

run status
check "status lists both devices" \
	'[ "$RC" -eq 0 ] &&
	      grep -qE "^hfi1_0 +0x1 +$GUID0 +$DEVDIR/uverbs$N0 +4: ACTIVE" <<<"$OUT" &&
	      grep -qE "^hfi1_1 +0x2 +0011:7501:0101:0002 +$DEVDIR/uverbs$N1 +4: ACTIVE" <<<"$OUT"'

# Two at once: the lock keeps their LIDs and nodes apart.
"$HFI1_SOFT" up --name hfi1_2 >/dev/null 2>&1 &
"$HFI1_SOFT" up --name hfi1_3 >/dev/null 2>&1 &
wait
N2=$(uverbs_of hfi1_2) N3=$(uverbs_of hfi1_3)
[ -n "$N2" ] && MADE_NODES+=("$DEVDIR/uverbs$N2")
[ -n "$N3" ] && MADE_NODES+=("$DEVDIR/uverbs$N3")
check "two ups at once get distinct LIDs and nodes" \
	'[ -n "$N2" ] && [ -n "$N3" ] && [ "$N2" != "$N3" ] &&
	      [ "$(sort "$RUNDIR"/sys/class/infiniband/hfi1_[23]/ports/1/lid |
		   tr "\n" " ")" = "0x3 0x4 " ]'
run down --name hfi1_2
run down --name hfi1_3
check "down --name removes those two" \
	'[ ! -e "$DEVDIR/uverbs$N2" ] && [ ! -e "$DEVDIR/uverbs$N3" ] &&
	      [ ! -e "$RUNDIR/devices/hfi1_2" ] && [ ! -e "$RUNDIR/devices/hfi1_3" ]'

# --- port -------------------------------------------------------------------

P=$IB/ports/1
INO=$(stat -c %i "$P/state")
run port --name hfi1_0 down
check "port down writes 1: DOWN and 3: Disabled" \
	'[ "$RC" -eq 0 ] && value_is "$P/state" "1: DOWN" &&
	      value_is "$P/phys_state" "3: Disabled"'
check "... by rename (a new inode)" \
	'[ "$(stat -c %i "$P/state")" != "$INO" ]'
check "... and 0644, no temporary file left" \
	'[ "$(stat -c %a "$P/state")" = 644 ] &&
	      [ -z "$(find "$P" -name ".*")" ]'
check "hfi1_1's port is still active" \
	'value_is "$RUNDIR/sys/class/infiniband/hfi1_1/ports/1/state" "4: ACTIVE"'
run status
check "status shows the port down" \
	'grep -qE "^hfi1_0 .* 1: DOWN$" <<<"$OUT"'
run port up
check "port up (hfi1_0 by default) writes 4: ACTIVE and 5: LinkUp" \
	'[ "$RC" -eq 0 ] && value_is "$P/state" "4: ACTIVE" &&
	      value_is "$P/phys_state" "5: LinkUp"'
run port --name hfi1_7 down
check "port of a device that is not up fails" 'failed_cleanly "hfi1_7 is not up"'
run port --name hfi1_0 sideways
check "port with neither up nor down fails" 'failed_cleanly "unknown argument"'

# --- a corrupt record --------------------------------------------------------

# A record whose numbers the shell would wrap: every command that reads it
# stops, saying so, and changes nothing.
REC1=$(cat "$RUNDIR/devices/hfi1_1")
printf 'uverbs=%s lid=99999999999999999999 guid=0011:7501:0101:0002\n' \
	"$N1" >"$RUNDIR/devices/hfi1_1"
SNAP=$(snapshot)
run status
check "status with a corrupt record fails cleanly" 'failed_cleanly "corrupt"'
run up --name hfi1_4
check "up beside a corrupt record fails cleanly" 'failed_cleanly "corrupt"'
run down
check "down with a corrupt record fails cleanly" 'failed_cleanly "corrupt"'
check "... and nothing changed" '[ "$(snapshot)" = "$SNAP" ]'
printf 'uverbs=99999 lid=2 guid=0011:7501:0101:0002\n' \
	>"$RUNDIR/devices/hfi1_1"
run up --name hfi1_4
check "up beside a record with uverbs=99999 fails cleanly" \
	'failed_cleanly "corrupt"'
printf '%s\n' "$REC1" >"$RUNDIR/devices/hfi1_1"
[ -e "$RUNDIR/devices/hfi1_4" ] &&
	MADE_NODES+=("$DEVDIR/uverbs$(uverbs_of hfi1_4)") &&
	"$HFI1_SOFT" down --name hfi1_4 >/dev/null 2>&1

# --- a tree another user can change ---------------------------------------

# Whatever in the rundir another user could rewrite stops every command
# that reads it, which says where; nothing is changed. Each case is undone
# before the next.
P1=$RUNDIR/sys/class/infiniband/hfi1_1/ports/1
refused_everywhere()
{
	local snap cmd ok=0

	snap=$(snapshot)
	for cmd in status "port --name hfi1_1 down" "up --name hfi1_4" down; do
		# shellcheck disable=SC2086 # the words of cmd
		run $cmd
		failed_cleanly "refusing $RUNDIR: $1" || { echo "    ($cmd)"; ok=1; }
	done
	[ "$(snapshot)" = "$snap" ] || { echo "    the rundir changed"; ok=1; }
	return $ok
}
chown nobody "$P1"
as_nobody sh -c 'echo 0x99 >"$1/lid.new" && mv "$1/lid.new" "$1/lid"' \
	sh "$P1"
check "a directory in the rundir owned by nobody, who forged a LID, is refused" \
	'refused_everywhere "$P1 is owned by nobody"'
chown root "$P1" "$P1/lid" && echo 0x2 >"$P1/lid"
chmod g+w "$RUNDIR/devices/hfi1_1"
check "a group-writable record is refused" \
	'refused_everywhere "$RUNDIR/devices/hfi1_1 is writable by group or others"'
chmod g-w "$RUNDIR/devices/hfi1_1"
chmod o+w "$RUNDIR/sys"
check "an others-writable sys/ is refused" \
	'refused_everywhere "$RUNDIR/sys is writable by group or others"'
chmod o-w "$RUNDIR/sys"
mv "$P1" "$P1.real" && ln -s 1.real "$P1"
check "a symlink in the rundir is refused" \
	'refused_everywhere "$P1 is a symlink"'
rm "$P1" && mv "$P1.real" "$P1"
check "undone, the rundir is used again" \
	'run status && [ "$RC" -eq 0 ] && grep -qE "^hfi1_1 +0x2 " <<<"$OUT"'

# --- down -------------------------------------------------------------------

# [as_nobody] "$PYTHON" -c "$STATS_FILE" NAME PID START: a whole stats
# file (hfi1_mrstat(1)). The system's python: nobody may run it.
PYTHON=/usr/bin/python3
STATS_FILE='import struct, sys
with open(sys.argv[1], "xb") as f:
    f.write(struct.pack("<8sIIQQQ64sQQQQ10Q5Q5Q", b"HFI1STAT", 2, 296,
                        int(sys.argv[2]), int(sys.argv[3]), 0,
                        b"hfi1_0", 0, 1, 1024, 0, *range(10), *[0] * 5,
                        *range(5)))'
bash -c 'exit 0' &
DEAD=$!
wait "$DEAD"
SELF_START=$(awk '{ print $22 }' "/proc/$$/stat")
"$PYTHON" -c "$STATS_FILE" "$STATS/libhfi1.$DEAD.0.stats" "$DEAD" 1
as_nobody "$PYTHON" -c "$STATS_FILE" "$STATS/libhfi1.$DEAD.1.stats" "$DEAD" 1
head -c 296 /dev/zero >"$STATS/libhfi1.$DEAD.2.stats"
echo target >"$TMP/stats-target"
ln -s -- "$TMP/stats-target" "$STATS/libhfi1.$DEAD.3.stats"
"$PYTHON" -c "$STATS_FILE" "$STATS/libhfi1.$$.0.stats" $$ "$SELF_START"
# Another user's, under this live pid, says another start time.
as_nobody "$PYTHON" -c "$STATS_FILE" "$STATS/libhfi1.$$.1.stats" $$ 1

run down --name hfi1_1
check "down removes the stats files of dead processes, any user's" \
	'[ "$RC" -eq 0 ] && [ ! -e "$STATS/libhfi1.$DEAD.0.stats" ] &&
	 [ ! -e "$STATS/libhfi1.$DEAD.1.stats" ] &&
	 [ ! -e "$STATS/libhfi1.$DEAD.2.stats" ] &&
	 says "removed $STATS/libhfi1.$DEAD.0.stats"'
check "... but not a link, nor a live process's, nor another user's under its pid" \
	'[ -L "$STATS/libhfi1.$DEAD.3.stats" ] && value_is "$TMP/stats-target" target &&
	 [ -f "$STATS/libhfi1.$$.0.stats" ] && [ -f "$STATS/libhfi1.$$.1.stats" ]'
check "down --name hfi1_1 removes its node, tree and record" \
	'[ "$RC" -eq 0 ] && [ ! -e "$DEVDIR/uverbs$N1" ] &&
	      [ ! -e "$RUNDIR/sys/class/infiniband/hfi1_1" ] &&
	      [ ! -e "$RUNDIR/sys/class/infiniband_verbs/uverbs$N1" ] &&
	      [ ! -e "$RUNDIR/devices/hfi1_1" ]'
check "... and leaves hfi1_0 alone" \
	'[ -c "$DEVDIR/uverbs$N0" ] && [ -d "$IB" ] && [ -d "$UV" ]'

run down
check "down removes the last device and the whole rundir" \
	'[ "$RC" -eq 0 ] && [ ! -e "$RUNDIR" ] && [ ! -e "$DEVDIR/uverbs$N0" ]'
check "$DEVDIR is as it was before" devdir_intact
run down
check "down again is no error" '[ "$RC" -eq 0 ]'

# Never a node it did not make: replace ours with /dev/zero's numbers.
run up
N0=$(uverbs_of hfi1_0)
[ -n "$N0" ] && MADE_NODES+=("$DEVDIR/uverbs$N0")
rm -f "$DEVDIR/uverbs$N0" && mknod -m 0600 "$DEVDIR/uverbs$N0" c 1 5
run down
check "down leaves a node it did not make" \
	'[ "$RC" -eq 0 ] && [ -c "$DEVDIR/uverbs$N0" ] &&
	      says "not the node up made" && [ ! -e "$RUNDIR" ]'
[ "$(stat -c %t:%T "$DEVDIR/uverbs$N0" 2>/dev/null)" = 1:5 ] &&
	rm -f "$DEVDIR/uverbs$N0"
# down kept the directory for the node it did not make; without one
# before, the test's node was the last in it.
[ "$DEV_BEFORE" = "(no $DEVDIR)" ] && rmdir -- "$DEVDIR" 2>/dev/null
check "$DEVDIR is as it was before" devdir_intact

# A rundir that needs quoting, and one that exists already.
QDIR="$TMP/it's a dir"
mkdir -m 0755 "$QDIR"
OUT=$(HFI1_SOFT_RUNDIR=$QDIR "$HFI1_SOFT" up 2>/dev/null)
NQ=$(sed -n 's/.*uverbs=\([0-9]*\).*/\1/p' "$QDIR/devices/hfi1_0" 2>/dev/null)
[ -n "$NQ" ] && MADE_NODES+=("$DEVDIR/uverbs$NQ")
check "a rundir with a quote and a space survives eval" \
	'(eval "$OUT" && [ "$SYSFS_PATH" = "$QDIR/sys" ])'
HFI1_SOFT_RUNDIR=$QDIR "$HFI1_SOFT" down 2>/dev/null
check "down keeps a rundir it did not make, emptied" \
	'[ -d "$QDIR" ] && [ -z "$(ls -A "$QDIR")" ] && devdir_intact'

# --- a rundir another user can change --------------------------------------

# track DIR: remember the nodes an up in DIR made, should it make any.
track()
{
	local rec n

	for rec in "$1"/devices/hfi1_*; do
		n=$(sed -n 's/.*uverbs=\([0-9]*\).*/\1/p' "$rec" 2>/dev/null)
		[ -n "$n" ] && MADE_NODES+=("$DEVDIR/uverbs$n")
	done
}
# refused DIR WHERE WHY: up and down with HFI1_SOFT_RUNDIR=DIR fail, saying
# WHERE WHY, and make nothing.
refused()
{
	local ok=0

	HFI1_SOFT_RUNDIR=$1 run up
	track "$1"
	failed_cleanly "refusing $1: $2 $3" || { echo "    (up)"; ok=1; }
	HFI1_SOFT_RUNDIR=$1 run down
	failed_cleanly "refusing $1: $2 $3" || { echo "    (down)"; ok=1; }
	devdir_intact || { echo "    a node was left"; ok=1; }
	return $ok
}

# As /tmp: anyone may add to it, only root rename root's entries.
mkdir -m 0755 "$TMP/victim" "$TMP/victim/sys" "$TMP/victim/sys/keep"
mkdir "$TMP/sticky" && chmod 1777 "$TMP/sticky"
as_nobody ln -s "$TMP/victim" "$TMP/sticky/run"
check "a rundir that is nobody's symlink is refused" \
	'refused "$TMP/sticky/run" "$TMP/sticky/run" "is a symlink"'
check "... and what it points to is left alone" \
	'[ -d "$TMP/victim/sys/keep" ] && [ ! -e "$TMP/victim/devices" ]'
ln -s "$TMP" "$TMP/link"
check "a symlink on the way to the rundir is refused, even root's" \
	'refused "$TMP/link/run" "$TMP/link" "is a symlink"'
mkdir -m 0755 "$TMP/nobodys"
chown nobody "$TMP/nobodys"
check "a rundir nobody owns is refused" \
	'refused "$TMP/nobodys" "$TMP/nobodys" "is owned by nobody"'
check "a rundir in a directory nobody owns is refused" \
	'refused "$TMP/nobodys/run" "$TMP/nobodys" "is owned by nobody" &&
	      [ ! -e "$TMP/nobodys/run" ]'
mkdir "$TMP/shared" && chmod 0775 "$TMP/shared"
check "a group-writable rundir is refused" \
	'refused "$TMP/shared" "$TMP/shared" "is writable by group or others"'
mkdir "$TMP/shared/run"
check "a rundir in a group-writable directory is refused" \
	'refused "$TMP/shared/run" "$TMP/shared" "is writable by group or others"'
mkdir "$TMP/sticky/run2"
check "a rundir of root's in a sticky directory is used" \
	'HFI1_SOFT_RUNDIR=$TMP/sticky/run2 run up && track "$TMP/sticky/run2" &&
	      [ "$RC" -eq 0 ] && HFI1_SOFT_RUNDIR=$TMP/sticky/run2 run down &&
	      [ "$RC" -eq 0 ] && [ -z "$(ls -A "$TMP/sticky/run2")" ]'

# down removes what up recorded making, and nothing else.
mkdir -m 0755 "$TMP/pre" "$TMP/pre/sys" "$TMP/pre/sys/keep"
HFI1_SOFT_RUNDIR=$TMP/pre run up
track "$TMP/pre"
HFI1_SOFT_RUNDIR=$TMP/pre run down
check "down leaves a sys/ up did not make, and says so" \
	'[ "$RC" -eq 0 ] && [ -d "$TMP/pre/sys/keep" ] &&
	      [ "$(ls -A "$TMP/pre" "$TMP/pre/sys" | grep -c .)" -eq 4 ] &&
	      says "leaving $TMP/pre/sys: up did not record making it" &&
	      devdir_intact'
rm -rf "$TMP/pre/sys"
HFI1_SOFT_RUNDIR=$TMP/pre run up
track "$TMP/pre"
echo "$TMP/victim" >>"$TMP/pre/created"
HFI1_SOFT_RUNDIR=$TMP/pre run down
check "down refuses a record of what up made that names another path" \
	'failed_cleanly "created is corrupt: it names $TMP/victim" &&
	      [ -d "$TMP/victim/sys/keep" ] && [ -f "$TMP/pre/devices/hfi1_0" ]'
sed -i '$d' "$TMP/pre/created"

# In a private /dev (a mount namespace with a tmpfs on /dev): what up does
# when /dev/infiniband is missing or cannot take a node.
in_private_dev()
{
	unshare -m --propagation private bash -c '
		mount -t tmpfs -o mode=0755 tmpfs /dev &&
		mknod -m 0666 /dev/null c 1 3 &&
		ln -s /proc/self/fd /dev/fd || exit 99
		'"$1" 2>/dev/null
}
if ! unshare -m --propagation private true 2>/dev/null; then
	skip "a private /dev: unshare -m is not allowed here"
else
	export HFI1_SOFT
	check "up makes $DEVDIR when it is missing; the last down removes it" \
		'in_private_dev "
			\"\$HFI1_SOFT\" up >/dev/null &&
			[ -c $DEVDIR/uverbs0 ] &&
			\"\$HFI1_SOFT\" down &&
			[ ! -e $DEVDIR ] && [ ! -e \"\$HFI1_SOFT_RUNDIR\" ]"'
	check "up fails clearly and leaves nothing when mknod fails" \
		'in_private_dev "
			mkdir $DEVDIR &&
			mount -t tmpfs -o ro,mode=0755 tmpfs $DEVDIR &&
			! \"\$HFI1_SOFT\" up >\"\$HFI1_SOFT_RUNDIR.out\" \
				2>\"\$HFI1_SOFT_RUNDIR.err\" &&
			[ ! -s \"\$HFI1_SOFT_RUNDIR.out\" ] &&
			grep -q \"cannot make the character device\" \
				\"\$HFI1_SOFT_RUNDIR.err\" &&
			[ ! -e \"\$HFI1_SOFT_RUNDIR\" ]"'
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
