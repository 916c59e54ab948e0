#!/bin/bash
# Runs every test of libhfi1: the C unit tests, the bring-up tests and the
# pyverbs tests on a private soft HFI, then the Debian packages (built,
# installed, used and purged) and the RPM spec (built), then the C unit tests, the C verbs
# tests and the showcase (label asan) again under AddressSanitizer and
# UndefinedBehaviorSanitizer, those of label tsan under ThreadSanitizer,
# then the soft HFI's
# libFuzzer target for HFI1_FUZZ_SECONDS (60 by default).
#
#   sudo ./test.sh
set -euo pipefail
cd "$(dirname "$0")"

. scripts/common.sh

# The tests bring up their own soft HFIs in a private directory.
unset SYSFS_PATH RDMAV_DRIVERS

install_deps
build build
echo "== ctest (build)"
ctest --test-dir build --output-on-failure --timeout 600

# The Debian packages: built from the tracked files, checked by lintian,
# installed into this machine, used from there (hfi1-soft, ibv_devinfo,
# hfi1_demo, the -dev files) and purged, leaving nothing; about a minute.
echo "== packages (tests/test_packages.sh)"
bash tests/test_packages.sh "$PWD" || [ $? -eq 77 ]
echo "== RPM packages (tests/test_rpm.sh)"
bash tests/test_rpm.sh "$PWD" || [ $? -eq 77 ]

build build-asan -DHFI1_SANITIZE=address,undefined
# Only programs built here: an uninstrumented program (python, ibv_devices)
# cannot load the instrumented provider ("ASan runtime does not come first"),
# so the pyverbs and bring-up tests stay out.
echo "== ctest (build-asan: unit, C verbs tests and showcase under ASan+UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	ctest --test-dir build-asan --output-on-failure --timeout 600 \
	-L 'unit|asan'

build build-tsan -DHFI1_SANITIZE=thread
echo "== ctest (build-tsan: the threaded unit tests under ThreadSanitizer)"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	ctest --test-dir build-tsan --output-on-failure --timeout 600 -L tsan

# libFuzzer over the soft HFI's ioctl entry: clang, its own build directory,
# only the fuzz target. A crash or a broken invariant fails the test; the
# reproducer is left in build-fuzz/tests/fuzz/fuzz_softhfi_ioctl/artifacts/.
echo "== build (build-fuzz: libFuzzer, clang)"
CC=clang cmake -S . -B build-fuzz -DHFI1_PYTHON=/usr/bin/python3 \
	-DHFI1_FUZZ=ON -DHFI1_FUZZ_SECONDS="${HFI1_FUZZ_SECONDS:-60}" >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_softhfi_ioctl
echo "== ctest (build-fuzz: fuzz_softhfi_ioctl, ${HFI1_FUZZ_SECONDS:-60} s)"
ctest --test-dir build-fuzz --output-on-failure -L fuzz
