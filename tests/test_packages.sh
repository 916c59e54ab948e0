#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# The Debian packages: they build from the tracked files of the source
# tree (dpkg-buildpackage -us -uc -b, parallel, no tests inside), lintian
# finds no error in them, they install into this machine,
# hfi1-soft.service passes systemd-analyze verify, udevadm takes the udev
# rules, the unit's own ExecStart (hfi1-soft up-all, run as the unit has
# it, since PID 1 here is not systemd) brings up soft HFIs from a config
# file that ibv_devinfo and the installed hfi1_demo and hfi1_showcase use
# through the installed provider, which libibverbs loads after rdma-core's
# hfi1verbs, and its ExecStop takes them down; a program builds against
# the -dev package. Then they are purged, and nothing of
# theirs is left: no file, no dpkg record, no systemd link, and every
# other provider loads as before.
#
#   tests/test_packages.sh [SOURCE_DIR]        (./test.sh, as root)
#
# Needs root (dpkg -i, up) and exits 77 (skipped) without it, without
# dpkg-buildpackage, or where libhfi1's packages are installed already
# (they are not this test's to remove). Run it under
# flock /tmp/hfi1-test.lock: while the packages are installed, every verbs
# program of the machine loads them. The soft HFIs live in a private
# HFI1_SOFT_RUNDIR. HFI1_PKG_KEEP=DIR keeps the .debs in DIR.

# Checks are shell expressions in single quotes, evaluated by check(), and
# cleanup() runs from the EXIT trap:
# shellcheck disable=SC2016,SC2317

set -u

readonly SKIP=77
readonly PACKAGES=(libhfi1-1 libhfi1-dev libhfi1-utils)
SRC=$(cd -- "${1:-$(dirname -- "${BASH_SOURCE[0]}")/..}" && pwd -P) || exit 1

# shellcheck source=lib/checks.sh
. "$SRC/tests/lib/checks.sh"

unset SYSFS_PATH RDMAV_DRIVERS IBV_DRIVERS

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

installed()
{
	dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null |
		grep -qvx 'not-installed'
}

[ "$(id -u)" -eq 0 ] || skip_all "installing packages needs root"
for tool in dpkg-buildpackage lintian ibv_devinfo; do
	command -v "$tool" >/dev/null ||
		skip_all "no $tool (scripts/common.sh installs it)"
done
for p in "${PACKAGES[@]}"; do
	! installed "$p" ||
		skip_all "$p is installed already; purge it to run this test"
done
[ ! -d /sys/module/ib_core ] ||
	skip_all "the kernel has RDMA netlink, so libibverbs ignores SYSFS_PATH"

TMP=$(mktemp -d /tmp/hfi1-packages.XXXXXX) || exit 1
chmod 0755 "$TMP"
RUNDIR=$TMP/run
INSTALLED=

# What the packages could leave: every path under these, before and after.
WATCH=(/etc /lib/systemd /lib/udev /usr/bin /usr/include/infiniband
       /usr/lib/x86_64-linux-gnu /usr/share/man /usr/share/doc
       /usr/share/lintian /var/lib/systemd)
snapshot()
{
	find "${WATCH[@]}" -xdev 2>/dev/null | sort
}

cleanup()
{
	if [ -d "$RUNDIR" ] && [ -x /usr/bin/hfi1-soft ]; then
		HFI1_SOFT_RUNDIR=$RUNDIR /usr/bin/hfi1-soft down >/dev/null 2>&1
	fi
	if [ -n "$INSTALLED" ]; then
		dpkg --purge "${PACKAGES[@]}" >/dev/null 2>&1
	fi
	if [ -n "${HFI1_PKG_KEEP:-}" ]; then
		mkdir -p -- "$HFI1_PKG_KEEP" && cp -- "$TMP"/*.deb "$HFI1_PKG_KEEP"
	fi
	rm -rf -- "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build -------------------------------------------------------------------

# From the tracked files only, as a fresh clone has them, in a directory of
# its own: dpkg-buildpackage writes the .debs next to the source tree.
mkdir "$TMP/src"
(cd "$SRC" && git ls-files -z | tar --null -T - -cf -) | tar -C "$TMP/src" -xf -
START=$SECONDS
(cd "$TMP/src" &&
 DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
	dpkg-buildpackage -us -uc -b >"$TMP/build.log" 2>&1)
RC=$?
check "dpkg-buildpackage -us -uc -b ($((SECONDS - START)) s)" \
	'[ "$RC" -eq 0 ] || show "$(tail -n 30 "$TMP/build.log")"'
[ "$FAILED" -eq 0 ] || finish
DEBS=()
for p in "${PACKAGES[@]}"; do
	DEBS+=("$(ls "$TMP"/"${p}"_*.deb 2>/dev/null)")
done
check "it builds ${PACKAGES[*]}" \
	'for d in "${DEBS[@]}"; do [ -f "$d" ] || exit 1; done ||
	      show "$(ls "$TMP")"'

START=$SECONDS
LINTIAN=$(cd "$TMP" && lintian --fail-on error --pedantic -I *.changes 2>&1)
RC=$?
check "lintian: no error ($((SECONDS - START)) s)" \
	'[ "$RC" -eq 0 ] || show "$LINTIAN"'
[ -z "$LINTIAN" ] || printf '    lintian: %s\n' "${LINTIAN//$'\n'/$'\n    lintian: '}"
[ "$FAILED" -eq 0 ] || finish

# --- install -----------------------------------------------------------------

BEFORE_FILES=$(snapshot)
BEFORE_DEVICES=$(ibv_devices 2>&1)
INSTALLED=1
START=$SECONDS
OUT=$(DEBIAN_FRONTEND=noninteractive dpkg -i "${DEBS[@]}" 2>&1)
RC=$?
check "dpkg -i installs them ($((SECONDS - START)) s)" \
	'[ "$RC" -eq 0 ] && for p in "${PACKAGES[@]}"; do
	      installed "$p" || exit 1; done || show "$OUT"'
[ "$FAILED" -eq 0 ] || finish

check "the provider is in libibverbs' directories, hfi1-soft in /usr/bin" \
	'[ -e /usr/lib/x86_64-linux-gnu/libibverbs/libhfi1-rdmav34.so ] &&
	      [ -f /etc/libibverbs.d/hfi1.driver ] && [ -x /usr/bin/hfi1-soft ] ||
	      show "$(dpkg -L libhfi1-1 libhfi1-utils)"'
OUT=$(ibv_devices 2>&1)
check "with no soft HFI up, libibverbs warns of nothing" \
	'! grep -qi "warning\|couldn.t" <<<"$OUT" || show "$OUT"'

# --- the systemd unit --------------------------------------------------------

# Its syntax, its dependencies and its commands, without a running systemd
# (--man=no: a machine without man-db still passes).
UNIT=/lib/systemd/system/hfi1-soft.service
if command -v systemd-analyze >/dev/null; then
	OUT=$(systemd-analyze verify --man=no "$UNIT" 2>&1)
	RC=$?
	check "systemd-analyze verify hfi1-soft.service" \
		'[ "$RC" -eq 0 ] && [ -z "$OUT" ] || show "$OUT"'
else
	echo "    (no systemd-analyze: the unit is not verified)"
fi
# The udev rules: udevadm test reads every rules file and names each line
# it cannot take. No device here matches them (no hfi1, no kernel uverbs),
# so that is as far as they run.
# It names them from /usr/lib where /lib is a link to it (merged /usr).
RULES='(/usr)?/lib/udev/rules\.d/70-libhfi1\.rules'
if command -v udevadm >/dev/null; then
	OUT=$(udevadm test --action=add /sys/devices/virtual/mem/null 2>&1)
	check "udevadm reads 70-libhfi1.rules, and takes every line" \
		'grep -qEx "Reading rules file: $RULES" <<<"$OUT" &&
		      ! grep -qE "^$RULES:" <<<"$OUT" ||
		      show "$(grep -E "$RULES" <<<"$OUT")"'
else
	echo "    (no udevadm: the udev rules are not read)"
fi
# Its commands as systemd runs them, with the test's config file for the
# shipped one, which lists no device.
UNIT_CONF=$(sed -n 's/^ConditionPathExists=//p' "$UNIT")
UNIT_START=$(sed -n 's/^ExecStart=//p' "$UNIT")
UNIT_STOP=$(sed -n 's/^ExecStop=//p' "$UNIT")
check "hfi1-soft.service runs up-all of $UNIT_CONF, and down" \
	'[ "$UNIT_CONF" = /etc/hfi1-soft.conf ] && [ -f "$UNIT_CONF" ] &&
	      [ "$UNIT_START" = "/usr/bin/hfi1-soft up-all $UNIT_CONF" ] &&
	      [ "$UNIT_STOP" = "/usr/bin/hfi1-soft down" ] || show "$(cat "$UNIT")"'

# --- soft HFIs from the installed copy ---------------------------------------

printf '%s\n' '# as /etc/hfi1-soft.conf' '--name hfi1_0 --lid 1' \
	'--name hfi1_1 --lid 2' >"$TMP/hfi1-soft.conf"
export HFI1_SOFT_RUNDIR=$RUNDIR
# Word splitting makes the command line of the unit's ExecStart.
# shellcheck disable=SC2086
OUT=$(${UNIT_START/"$UNIT_CONF"/"$TMP/hfi1-soft.conf"} 2>&1)
RC=$?
check "the unit's ExecStart brings up hfi1_0 and hfi1_1" \
	'[ "$RC" -eq 0 ] && [ -f "$RUNDIR/devices/hfi1_0" ] &&
	      [ -f "$RUNDIR/devices/hfi1_1" ] || show "$OUT"'
ENV=$(/usr/bin/hfi1-soft up --name hfi1_0 2>/dev/null)
check "... and up prints SYSFS_PATH only: libibverbs loads the provider" \
	'[ "$ENV" = "export SYSFS_PATH='\''$RUNDIR/sys'\''" ] || show "$ENV"'
eval "$ENV"

# From a clean environment and another directory: nothing of the trees.
clean()
{
	(cd / && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		SYSFS_PATH="$SYSFS_PATH" "$@")
}
INFO=$(clean env LD_DEBUG=files LD_DEBUG_OUTPUT="$TMP/ld" \
       timeout 30 ibv_devinfo -d hfi1_0 2>&1)
RC=$?
check "ibv_devinfo -d hfi1_0 shows port 1 ACTIVE with LID 1" \
	'[ "$RC" -eq 0 ] &&
	      grep -qE "state:[[:space:]]+PORT_ACTIVE \(4\)" <<<"$INFO" &&
	      grep -qE "port_lid:[[:space:]]+1\$" <<<"$INFO" || show "$INFO"'
LOADED=$(cat "$TMP"/ld.* 2>/dev/null |
	 sed -n 's/.*file=\([^ ]*-rdmav[0-9]*\.so\) .*/\1/p' |
	 awk '!seen[$0]++')
check "... through the installed provider" \
	'grep -qx "/usr/lib/x86_64-linux-gnu/libibverbs/libhfi1-rdmav34.so" \
	      <<<"$LOADED" || show "loaded: ${LOADED:-nothing}"'
ORDER=$(grep -n -e '/libhfi1verbs-rdmav' -e '/libhfi1-rdmav' <<<"$LOADED")
check "... loaded after rdma-core's hfi1verbs, as hfi1.driver says" \
	'[ "$(cut -d: -f2 <<<"$ORDER" | xargs -n1 basename | tr "\n" " ")" = \
	      "libhfi1verbs-rdmav34.so libhfi1-rdmav34.so " ] ||
	      show "load order: $ORDER"'

START=$SECONDS
OUT=$(clean timeout 60 /usr/bin/hfi1_mrstat -- \
      /usr/bin/hfi1_demo -d hfi1_0 -p hfi1_1 2>&1)
RC=$?
check "the installed hfi1_demo runs under the installed hfi1_mrstat ($((SECONDS - START)) s)" \
	'[ "$RC" -eq 0 ] || show "$OUT"'
START=$SECONDS
OUT=$(clean timeout 60 /usr/bin/hfi1_mrstat -- \
      /usr/bin/hfi1_showcase -d hfi1_0 -D hfi1_1 2>&1)
RC=$?
check "the installed hfi1_showcase passes, under hfi1_mrstat ($((SECONDS - START)) s)" \
	'[ "$RC" -eq 0 ] && grep -q "^verdict: PASS" <<<"$OUT" || show "$OUT"'

# The -dev package: a program builds with pkg-config and calls hfi1dv.
printf '%s\n' '#include <errno.h>' '#include <infiniband/hfi1dv.h>' \
	'int main(void) { return hfi1dv_query_mr_cache(0, 0, 0) != EOPNOTSUPP; }' \
	>"$TMP/dv.c"
OUT=$(cc -o "$TMP/dv" "$TMP/dv.c" $(pkg-config --cflags --libs libhfi1) 2>&1 &&
      "$TMP/dv" 2>&1)
RC=$?
check "a program builds with pkg-config libhfi1 and runs" \
	'[ "$RC" -eq 0 ] || show "$OUT"'

# shellcheck disable=SC2086
OUT=$($UNIT_STOP 2>&1)
RC=$?
check "the unit's ExecStop removes them" \
	'[ "$RC" -eq 0 ] && [ ! -e "$RUNDIR" ] || show "$OUT"'
unset SYSFS_PATH HFI1_SOFT_RUNDIR

# --- purge -------------------------------------------------------------------

START=$SECONDS
OUT=$(DEBIAN_FRONTEND=noninteractive dpkg --purge "${PACKAGES[@]}" 2>&1)
RC=$?
INSTALLED=
check "dpkg --purge removes them ($((SECONDS - START)) s)" \
	'[ "$RC" -eq 0 ] && for p in "${PACKAGES[@]}"; do
	      ! installed "$p" || exit 1; done || show "$OUT"'
LEFT=$(comm -13 <(printf '%s\n' "$BEFORE_FILES") <(snapshot))
check "... and leaves no file behind" \
	'[ -z "$LEFT" ] || show "$LEFT"'
OUT=$(ibv_devices 2>&1)
check "... and libibverbs lists and loads as before" \
	'[ "$OUT" = "$BEFORE_DEVICES" ] || show "$OUT"'

echo "packages: $SECONDS s in all"
finish
