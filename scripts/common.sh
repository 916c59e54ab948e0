# Shared by setup.sh and test.sh. Debian 12 (bookworm) packages only.
DEBIAN_PACKAGES=(
	build-essential cmake pkg-config pandoc clang-format
	libibverbs-dev ibverbs-providers ibverbs-utils rdma-core python3-pyverbs
	perftest
	liburing-dev libfuse3-dev fuse3 libcmocka-dev
	util-linux
	clang libclang-rt-14-dev
	debhelper dpkg-dev lintian rpm systemd udev
	ucx-utils libucx0 openmpi-bin libopenmpi-dev
)

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_deps() {
	local missing=()
	local p
	for p in "${DEBIAN_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "== installing: ${missing[*]}"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# build DIR [cmake args...]
build() {
	local dir=$1
	shift
	echo "== build ($dir)"
	cmake -S . -B "$dir" -DHFI1_PYTHON=/usr/bin/python3 "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)"
}

bring_up_soft_hfi() {
	echo "== hfi1-soft up"
	eval "$(as_root build/bin/hfi1-soft up --name hfi1_0)"
	eval "$(as_root build/bin/hfi1-soft up --name hfi1_1)"
	build/bin/hfi1-soft status
}
