#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# An installed copy of libhfi1 works without the build tree: installed with
# `cmake --install BUILD --prefix TMP`, TMP/bin/hfi1-soft up prints the
# environment of the provider installed in TMP, and the stock verbs tools
# then see the soft HFI through it, also with the source and build trees
# hidden (when unshare -m is allowed).
#
#   tests/test_hfi1_soft_installed.sh BUILD_DIR [SOURCE_DIR]
#                                       (ctest: hfi1_soft_installed)
#
# Needs root (up makes a node in /dev/infiniband) and exits 77 (skipped)
# without it. Everything happens in a private temporary directory: the
# install prefix and the soft HFI's HFI1_SOFT_RUNDIR (its sysfs tree). A
# probe install into a DESTDIR first makes sure that nothing would be
# installed outside the prefix. At exit the device is taken down and the
# build's install_manifest.txt is put back as it was.
#
# HFI1_INSTALL_BINDIR (default bin), HFI1_PROVIDER_DIR and
# HFI1_DRIVER_CONF_DIR are the build's install directories (ctest sets them).

# Checks are shell expressions in single quotes, evaluated by check(), and
# cleanup() runs from the EXIT trap:
# shellcheck disable=SC2016,SC2034,SC2317

set -u

readonly SKIP=77 NAME=hfi1_5 LID=9 GUID=0011750101050009
BUILD=$(cd -- "${1:?usage: $0 BUILD_DIR [SOURCE_DIR]}" && pwd -P) || exit 1
SRC=$(cd -- "${2:-$(dirname -- "${BASH_SOURCE[0]}")/..}" && pwd -P) || exit 1
BINDIR=${HFI1_INSTALL_BINDIR:-bin}
DEVDIR=/dev/infiniband

# shellcheck source=lib/checks.sh
. "$SRC/tests/lib/checks.sh"

# This test brings up its own device.
unset SYSFS_PATH RDMAV_DRIVERS

skip_all()
{
	echo "SKIP: $*"
	exit $SKIP
}


# Show a command's output, indented, and fail.
show()
{
	local line

	while IFS= read -r line; do
		printf '    %s\n' "$line"
	done <<<"$1"
	return 1
}

# $1 is a path inside directory $2 (both canonical).
inside()
{
	case $1 in
	"$2"/*) return 0 ;;
	*) return 1 ;;
	esac
}

[ "$(id -u)" -eq 0 ] ||
	skip_all "bringing up a soft HFI needs root (it makes a node in $DEVDIR)"
for tool in ibv_devices ibv_devinfo; do
	command -v "$tool" >/dev/null ||
		skip_all "no $tool (apt-get install ibverbs-utils)"
done
[ ! -d /sys/module/ib_core ] ||
	skip_all "the kernel has RDMA netlink, so libibverbs ignores SYSFS_PATH"
[ -f "$BUILD/cmake_install.cmake" ] ||
	{ fail "$BUILD is not a configured build directory"; finish; }
case $BINDIR in
/*) skip_all "CMAKE_INSTALL_BINDIR is absolute ($BINDIR), not in the prefix" ;;
esac

# The prefix must be outside the source and build trees.
TMPBASE=$(cd -- "${TMPDIR:-/tmp}" && pwd -P) || exit 1
if inside "$TMPBASE/" "$BUILD" || inside "$TMPBASE/" "$SRC"; then
	TMPBASE=/tmp
fi
TMP=$(mktemp -d "$TMPBASE/hfi1-soft-installed.XXXXXX") || exit 1
TMP=$(cd -- "$TMP" && pwd -P)
chmod 0755 "$TMP"
PREFIX=$TMP/prefix
RUNDIR=$TMP/run
HFI1_SOFT=$PREFIX/$BINDIR/hfi1-soft
MANIFEST=$BUILD/install_manifest.txt
NODE=

# cmake --install rewrites the build's install_manifest.txt: keep the one
# a real install may have left.
if [ -f "$MANIFEST" ]; then
	cp -p -- "$MANIFEST" "$TMP/install_manifest.txt.saved"
fi

cleanup()
{
	if [ -d "$RUNDIR" ]; then
		if [ -x "$HFI1_SOFT" ]; then
			HFI1_SOFT_RUNDIR=$RUNDIR "$HFI1_SOFT" down >/dev/null 2>&1
		else
			HFI1_SOFT_RUNDIR=$RUNDIR "$BUILD/bin/hfi1-soft" down \
				>/dev/null 2>&1
		fi
	fi
	# Whatever a broken hfi1-soft left: only the node seen made here.
	if [ -n "$NODE" ] && [ -c "$NODE" ] &&
	   [ "$(stat -c %t:%T "$NODE")" = 1:3 ]; then
		rm -f -- "$NODE"
	fi
	if [ -f "$TMP/install_manifest.txt.saved" ]; then
		cp -p -- "$TMP/install_manifest.txt.saved" "$MANIFEST"
	else
		rm -f -- "$MANIFEST"
	fi
	rm -rf -- "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "build:  $BUILD"
echo "prefix: $PREFIX"
echo "rundir: $RUNDIR"

# --- install ----------------------------------------------------------------

# A probe into a DESTDIR first: what lands outside DESTDIR/PREFIX would have
# gone outside the prefix, into the system.
if ! DESTDIR=$TMP/probe cmake --install "$BUILD" --prefix "$PREFIX" \
	>"$TMP/probe.log" 2>&1; then
	fail "cmake --install into a DESTDIR"
	show "$(cat "$TMP/probe.log")"
	finish
fi
OUTSIDE=$(cd "$TMP/probe" && find . ! -type d | sed 's/^\.//' |
	  while IFS= read -r f; do
		  inside "$f" "$PREFIX" || printf '%s\n' "$f"
	  done)
if [ -n "$OUTSIDE" ]; then
	for v in HFI1_PROVIDER_DIR HFI1_DRIVER_CONF_DIR; do
		case ${!v:-} in
		/*) skip_all "$v is an absolute path (${!v}):" \
			"installing into another prefix would write" \
			"$(tr '\n' ' ' <<<"$OUTSIDE")" ;;
		esac
	done
fi
check "cmake --install --prefix puts everything under the prefix" \
	'[ -z "$OUTSIDE" ] || show "$OUTSIDE"'
[ -z "$OUTSIDE" ] || finish

cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1
RC=$?
check "cmake --install $BUILD --prefix $PREFIX" \
	'[ "$RC" -eq 0 ] || show "$(cat "$TMP/install.log")"'
PROVIDER=$(grep -m1 '/libhfi1-rdmav[0-9]*\.so$' "$MANIFEST" 2>/dev/null)
check "the provider and hfi1-soft are installed in the prefix" \
	'[ -x "$HFI1_SOFT" ] && [ -f "$PROVIDER" ] &&
	      inside "$PROVIDER" "$PREFIX" ||
	      show "$(cat "$MANIFEST" 2>&1)"'
LIBRARY=$(grep -m1 '/libhfi1\.so\.1$' "$MANIFEST" 2>/dev/null)
check "the provider is a symlink to libhfi1.so.1, which has its -lhfi1 link" \
	'[ -n "$LIBRARY" ] && [ -L "$PROVIDER" ] && [ -L "${LIBRARY%.1}" ] &&
	      [ "$(readlink -f -- "$PROVIDER")" = "$(readlink -f -- "$LIBRARY")" ] &&
	      [ "$(readlink -f -- "${LIBRARY%.1}")" = "$(readlink -f -- "$LIBRARY")" ] ||
	      show "$(ls -l "$PROVIDER" "$LIBRARY" "${LIBRARY%.1}" 2>&1)"'

# An application builds against the installed hfi1dv with pkg-config.
PCDIR=$(dirname -- "$(grep -m1 '/libhfi1\.pc$' "$MANIFEST" 2>/dev/null)")
if ! command -v cc >/dev/null || ! command -v pkg-config >/dev/null; then
	skip "building against hfi1dv: no cc or pkg-config"
else
	printf '%s\n' '#include <infiniband/hfi1dv.h>' \
		'int main(void) { return hfi1dv_query_mr_cache(0, 0, 0) != EOPNOTSUPP; }' \
		>"$TMP/dv.c"
	OUT=$(PKG_CONFIG_PATH=$PCDIR cc -include errno.h -o "$TMP/dv" "$TMP/dv.c" \
	      $(PKG_CONFIG_PATH=$PCDIR pkg-config --cflags --libs libhfi1) \
	      -Wl,-rpath,"$(dirname -- "$LIBRARY")" 2>&1 && "$TMP/dv" 2>&1)
	RC=$?
	check "a program builds with pkg-config libhfi1 and calls hfi1dv" \
		'[ "$RC" -eq 0 ] || show "$OUT"'
fi
[ "$FAILED" -eq 0 ] || finish

# --- up from the installed copy ----------------------------------------------

export HFI1_SOFT_RUNDIR=$RUNDIR
OUT=$("$HFI1_SOFT" up --name $NAME --lid $LID 2>"$TMP/stderr")
RC=$?
ERR=$(cat "$TMP/stderr")
NODE=$(sed -n 's/.*uverbs=\([0-9]*\).*/\1/p' "$RUNDIR/devices/$NAME" \
       2>/dev/null)
[ -z "$NODE" ] || NODE=$DEVDIR/uverbs$NODE
check "installed hfi1-soft up --name $NAME --lid $LID" \
	'[ "$RC" -eq 0 ] && [ -n "$NODE" ] && [ -c "$NODE" ] ||
	      show "$ERR"'
check "... prints only the two export lines" \
	'[ "$(wc -l <<<"$OUT")" -eq 2 ] &&
	      grep -q "^export SYSFS_PATH=" <<<"$OUT" &&
	      grep -q "^export RDMAV_DRIVERS=" <<<"$OUT" || show "$OUT"'
[ "$FAILED" -eq 0 ] || finish

eval "$OUT"
check "SYSFS_PATH is the private rundir's tree" \
	'[ "${SYSFS_PATH:-}" = "$RUNDIR/sys" ] || show "SYSFS_PATH=${SYSFS_PATH:-}"'
check "RDMAV_DRIVERS names the installed provider" \
	'[ "${RDMAV_DRIVERS:-}" = "${PROVIDER%-rdmav*.so}" ] ||
	      show "RDMAV_DRIVERS=${RDMAV_DRIVERS:-}, installed: $PROVIDER"'
check "... which is inside the prefix, not the build or source tree" \
	'inside "${RDMAV_DRIVERS:-}" "$PREFIX" &&
	      ! inside "$RDMAV_DRIVERS" "$BUILD" &&
	      ! inside "$RDMAV_DRIVERS" "$SRC" ||
	      show "RDMAV_DRIVERS=${RDMAV_DRIVERS:-}"'

# --- the stock tools see the device ------------------------------------------

DEVICES=$(timeout 30 ibv_devices 2>&1)
check "ibv_devices lists $NAME with its GUID" \
	'grep -qE "^[[:space:]]*$NAME[[:space:]]+$GUID\$" <<<"$DEVICES" ||
	      show "$DEVICES"'

# LD_DEBUG=files names every library the dynamic loader opens.
INFO=$(LD_DEBUG=files LD_DEBUG_OUTPUT=$TMP/ld timeout 30 \
       ibv_devinfo -d $NAME 2>&1)
RC=$?
check "ibv_devinfo -d $NAME shows port 1 ACTIVE with LID $LID" \
	'[ "$RC" -eq 0 ] &&
	      grep -qE "hca_id:[[:space:]]+$NAME\$" <<<"$INFO" &&
	      grep -qE "state:[[:space:]]+PORT_ACTIVE \(4\)" <<<"$INFO" &&
	      grep -qE "port_lid:[[:space:]]+$LID\$" <<<"$INFO" ||
	      show "$INFO"'
LOADED=$(cat "$TMP"/ld.* 2>/dev/null |
	 sed -n 's/.*file=\([^ ]*libhfi1-rdmav[0-9]*\.so\) .*/\1/p' | sort -u)
check "... through the installed provider" \
	'[ "$LOADED" = "$PROVIDER" ] || show "loaded: ${LOADED:-nothing}"'

DEMO=$PREFIX/$BINDIR/hfi1_demo
if [ -x "$DEMO" ]; then
	OUT=$(timeout 30 "$DEMO" -d $NAME 2>&1)
	RC=$?
	check "the installed hfi1_demo opens $NAME" \
		'[ "$RC" -eq 0 ] || show "$OUT"'
fi

# Without the build tree at all: in a private mount namespace, an empty
# tmpfs over the build tree, then over the source tree; up (for a device
# that is up, it only prints the environment again) and ibv_devinfo from a
# clean environment.
without_trees()
{
	env -u SYSFS_PATH -u RDMAV_DRIVERS \
	unshare -m --propagation private bash -c '
		for d in "$4" "$3"; do
			mount -t tmpfs -o ro tmpfs "$d" || exit 99
		done
		for d in "$4" "$3"; do
			[ ! -d "$d" ] || [ -z "$(ls -A "$d")" ] ||
				{ echo "$d is not hidden"; exit 99; }
		done
		eval "$("$1" up --name "$2")" &&
			timeout 30 ibv_devinfo -d "$2"' \
		bash "$HFI1_SOFT" $NAME "$SRC" "$BUILD" 2>&1
}
if ! unshare -m --propagation private true 2>/dev/null; then
	echo "SKIP: hiding the build tree: unshare -m is not allowed here"
elif inside "$TMP" "$BUILD" || inside "$TMP" "$SRC"; then
	echo "SKIP: hiding the build tree: $TMP is inside it"
else
	OUT=$(without_trees)
	RC=$?
	check "with the source and build trees hidden, up and ibv_devinfo work" \
		'[ "$RC" -eq 0 ] &&
		      grep -qE "port_lid:[[:space:]]+$LID\$" <<<"$OUT" ||
		      show "$OUT"'
fi

# --- down -------------------------------------------------------------------

OUT=$("$HFI1_SOFT" down 2>&1)
RC=$?
check "installed hfi1-soft down removes the node and the whole rundir" \
	'[ "$RC" -eq 0 ] && [ ! -e "$NODE" ] && [ ! -e "$RUNDIR" ] ||
	      show "$OUT"'

finish
