#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# hfi1_showcase --json on the soft HFIs that tests/with_soft_hfi.sh brings
# up (hfi1_0, hfi1_1): it exits 0, its JSON parses, the verdict is PASS and
# the counters agree with one another (every freed buffer one invalidation
# event and one stale write refused, every registration a hit or a miss).
# 16 MiB is among the sizes: longer than a link holds, so its stale writes
# are refused while the rest of the message is still being sent. Also the
# options: --help, a bad one, a device that is not there.
#
#   tests/with_soft_hfi.sh HFI1_SOFT tests/test_showcase_json.sh SHOWCASE PYTHON

# Checks are shell expressions in single quotes, evaluated by check():
# shellcheck disable=SC2016

set -u

SHOWCASE=${1:?usage: $0 SHOWCASE PYTHON}
PYTHON=${2:?usage: $0 SHOWCASE PYTHON}

# shellcheck source=lib/checks.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib/checks.sh"

ROUNDS=8
EVERY=4
OUT=$("$SHOWCASE" --json --sizes 8,4K,1M,16M --rounds $ROUNDS \
	--free-every $EVERY 2>&1)
RC=$?
printf '%s\n' "$OUT"
check "hfi1_showcase --json exits 0" '[ "$RC" -eq 0 ]'
WHY=$("$PYTHON" - "$OUT" "$ROUNDS" "$EVERY" <<'PY'
import json
import sys

out, rounds, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    r = json.loads(out)
except ValueError as e:
    print(f"not JSON: {e}")
    sys.exit(1)
bad = []
if r["verdict"] != "PASS":
    bad.append(f"verdict {r['verdict']}")
if [s["size"] for s in r["sizes"]] != [8, 4096, 1 << 20, 16 << 20]:
    bad.append("the sizes asked for")
frees = rounds // every
for s in r["sizes"]:
    n = s["size"]
    want = {"rounds": rounds, "writes": rounds, "write_errors": 0,
            "corrupt_rounds": 0, "frees": frees, "events": frees,
            "stale_writes": frees, "stale_refused": frees,
            "stale_landed": 0, "qp_access_err_events": frees,
            "integrity": "OK", "ok": True}
    for k, v in want.items():
        if s[k] != v:
            bad.append(f"{n}: {k} {s[k]}, not {v}")
    if s["hits"] + s["misses"] != rounds + frees:
        bad.append(f"{n}: {s['hits']} hits + {s['misses']} misses, "
                   f"not {rounds + frees} registrations")
    if s["misses"] < 1 + frees or s["invalidated_in_use"] < frees:
        bad.append(f"{n}: {s['misses']} misses, "
                   f"{s['invalidated_in_use']} invalidated in use")
    if s["reg_hit_us_median"] is None or s["reg_miss_us_median"] is None:
        bad.append(f"{n}: no median registration time")
    if not s["mb_per_s"] > 0 and n > 8:
        bad.append(f"{n}: no bandwidth")
t = r["totals"]
if t["stale_refused"] != 4 * frees or t["events"] != 4 * frees:
    bad.append(f"totals {t}")
print("; ".join(bad))
sys.exit(1 if bad else 0)
PY
)
RC=$?
check "its JSON parses and its counters agree${WHY:+: $WHY}" '[ "$RC" -eq 0 ]'

OUT=$("$SHOWCASE" --help 2>&1)
RC=$?
check "--help prints the usage and exits 0" \
	'[ "$RC" -eq 0 ] && grep -q "^usage: hfi1_showcase" <<<"$OUT"'
"$SHOWCASE" --sizes 12 >/dev/null 2>&1
RC=$?
check "--sizes 12 (not a multiple of 8) exits 2" '[ "$RC" -eq 2 ]'
OUT=$("$SHOWCASE" -D hfi1_9 2>&1)
RC=$?
check "a device that is not up: exit 1, and says which" \
	'[ "$RC" -eq 1 ] && grep -q "cannot open hfi1_9" <<<"$OUT" ||
	 { printf "    %s\n" "$OUT"; false; }'
finish
