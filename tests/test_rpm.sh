#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# The RPM spec: rpmbuild -bb redhat/libhfi1.spec builds the three packages
# from a tarball of the tracked files, and rpm -qlp shows each one's files.
# On Debian the build dependencies are Debian packages, which rpm does not
# know: --nodeps.
#
#   tests/test_rpm.sh [SOURCE_DIR]        (./test.sh)
#
# Exits 77 (skipped) without rpmbuild (Debian: apt-get install rpm).

# Checks are shell expressions in single quotes, evaluated by check():
# shellcheck disable=SC2016

set -u

SRC=$(cd -- "${1:-$(dirname -- "${BASH_SOURCE[0]}")/..}" && pwd -P) || exit 1

# shellcheck source=lib/checks.sh
. "$SRC/tests/lib/checks.sh"

command -v rpmbuild >/dev/null ||
	{ echo "SKIP: no rpmbuild (apt-get install rpm)"; exit 77; }

VERSION=$(sed -n 's/^Version:[[:space:]]*//p' "$SRC/redhat/libhfi1.spec")
TMP=$(mktemp -d /tmp/hfi1-rpm.XXXXXX) || exit 1
trap 'rm -rf -- "$TMP"' EXIT

mkdir "$TMP/SOURCES"
(cd "$SRC" && git ls-files -z |
 tar --null -T - --transform "s,^,libhfi1-$VERSION/," -czf \
	"$TMP/SOURCES/libhfi1-$VERSION.tar.gz")
START=$SECONDS
rpmbuild -bb --nodeps --define "_topdir $TMP" \
	"$SRC/redhat/libhfi1.spec" >"$TMP/build.log" 2>&1
RC=$?
check "rpmbuild -bb redhat/libhfi1.spec ($((SECONDS - START)) s)" \
	'[ "$RC" -eq 0 ] || { tail -n 30 "$TMP/build.log"; false; }'
[ "$FAILED" -eq 0 ] || finish

# has PACKAGE FILE...: rpm -qlp of PACKAGE lists every FILE (a regex).
has()
{
	local rpm list f

	rpm=$(ls "$TMP"/RPMS/*/"$1-$VERSION"-*.rpm 2>/dev/null) || {
		echo "    no $1 package"
		return 1
	}
	list=$(rpm -qlp "$rpm" 2>/dev/null)
	shift
	for f in "$@"; do
		grep -qx -- "$f" <<<"$list" ||
			{ echo "    not in it: $f"; printf '    %s\n' $list; return 1; }
	done
}
L=/usr/lib64
check "libhfi1: the provider, its link and hfi1.driver" \
	'has libhfi1 "$L/libhfi1\.so\.1" "$L/libibverbs/libhfi1-rdmav34\.so" \
	     /etc/libibverbs.d/hfi1.driver'
check "libhfi1-utils: the tools, their man pages and kernel-boot's files" \
	'has libhfi1-utils /usr/bin/hfi1-soft /usr/bin/hfi1_mrstat \
	     /usr/bin/hfi1_demo /usr/bin/hfi1_showcase \
	     "/usr/share/man/man8/hfi1-soft\.8.*" \
	     "/usr/share/man/man8/hfi1-soft\.service\.8.*" \
	     "/usr/share/man/man1/hfi1_mrstat\.1.*" \
	     "/usr/share/man/man1/hfi1_showcase\.1.*" \
	     ".*/systemd/system/hfi1-soft\.service" \
	     ".*/udev/rules\.d/70-libhfi1\.rules" /etc/hfi1-soft.conf \
	     /etc/modprobe.d/libhfi1.conf /etc/security/limits.d/libhfi1.conf'
check "libhfi1-devel: hfi1dv.h, the .so link, the .pc, man 3 and 7" \
	'has libhfi1-devel /usr/include/infiniband/hfi1dv.h "$L/libhfi1\.so" \
	     "$L/pkgconfig/libhfi1\.pc" "/usr/share/man/man3/hfi1dv_query_mr\.3.*" \
	     "/usr/share/man/man7/hfi1dv\.7.*"'
finish
