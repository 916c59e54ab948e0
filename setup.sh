#!/bin/bash
# libhfi1's main job: install what it needs from Debian, build, bring up the
# soft HFI and run the demonstration on it.
#
#   sudo ./setup.sh
set -euo pipefail
cd "$(dirname "$0")"

. scripts/common.sh

install_deps
build build
bring_up_soft_hfi

echo "== ibv_devices"
ibv_devices
echo "== hfi1_demo (under hfi1_mrstat, which prints its MR cache counters at the end)"
build/bin/hfi1_mrstat -- build/bin/hfi1_demo -d hfi1_0
echo
echo "The soft HFI stays up. To use it from your shell:"
echo "    eval \"\$(build/bin/hfi1-soft up)\""
echo "and take it down with: build/bin/hfi1-soft down"
