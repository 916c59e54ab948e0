#!/bin/bash
# libhfi1's main job: install what it needs from Debian, build, bring up the
# soft HFI and run the showcase on it: RDMA WRITEs between two processes
# into MRs the receiver's cache serves while it frees and reuses memory.
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
echo "== hfi1_demo: hfi1_0, its MR cache, one RDMA WRITE to hfi1_1"
build/bin/hfi1_demo -d hfi1_0 -p hfi1_1
echo
echo "== hfi1_showcase: a writer on hfi1_0, a receiver on hfi1_1 (under"
echo "   hfi1_mrstat, which prints both processes' MR cache and data"
echo "   counters at the end)"
build/bin/hfi1_mrstat -- build/bin/hfi1_showcase -d hfi1_0 -D hfi1_1
echo
echo "The soft HFI stays up. To use it from your shell:"
echo "    eval \"\$(build/bin/hfi1-soft up)\""
echo "and take it down with: build/bin/hfi1-soft down"
