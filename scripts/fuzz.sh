#!/usr/bin/env bash
# A long schemathesis run against a real server (tests/test_openapi_fuzz.py with more cases):
# every documented operation, every check, at least 10,000 generated cases by default. Prints
# the counts; keeps the run (schemathesis's account with curl reproducers, report.json, the
# server's log) in .cache/fuzz/ (FUZZ_OUT).
#
#   scripts/fuzz.sh                      # ~400 cases per operation and phase, seed 20260901
#   FUZZ_EXAMPLES=1000 FUZZ_SEED=7 scripts/fuzz.sh
#   FUZZ_PHASES=stateful FUZZ_EXAMPLES=30 FUZZ_SECONDS=300 FUZZ_MIN_CASES=1 scripts/fuzz.sh
#                                        # chains: create, then read/change/delete what exists
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_system
ensure_venv
ensure_db
out="${FUZZ_OUT:-$ROOT/.cache/fuzz}"
mkdir -p "$out"
rm -f "$out/report.json"
start=$(date +%s)
YIZHAN_TEST_TAG="${YIZHAN_TEST_TAG:-fuzz_}" \
YIZHAN_FUZZ_EXAMPLES="${FUZZ_EXAMPLES:-400}" \
YIZHAN_FUZZ_MIN_CASES="${FUZZ_MIN_CASES:-10000}" \
YIZHAN_FUZZ_SEED="${FUZZ_SEED:-20260901}" \
YIZHAN_FUZZ_OUT="$out" \
YIZHAN_FUZZ_PHASES="${FUZZ_PHASES:-}" \
YIZHAN_FUZZ_MAX_SECONDS="${FUZZ_SECONDS:-}" \
  python -m pytest tests/test_openapi_fuzz.py -q -p no:cacheprovider >"$out/pytest.txt" 2>&1
status=$?
[ -f "$out/report.json" ] || { tail -40 "$out/pytest.txt"; die "no report: see $out/pytest.txt"; }
python - "$out/report.json" "$(($(date +%s) - start))" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cases = r["test_cases"]
server = sum(f["count"] for f in r["failures"] if f["code"] == "ST101")
print(f"schemathesis {r['schemathesis_version']}, seed {r['seed']}, {sys.argv[2]} s")
print(f"operations tested:  {r['operations']['tested']} of {r['operations']['selected']}")
print(f"cases generated:    {cases['generated']}")
print(f"cases failing:      {cases['with_failures']} ({cases['unique_failures']} unique)")
print(f"server errors (5xx): {server}")
for f in r["failures"]:
    print(f"  {f['count']:6d} × {f['code']} {f['title']}: {', '.join(f['operations'][:4])}")
for e in r["errors"]:
    print(f"  {e['count']:6d} × error: {e['title']}")
PY
echo "details: $out/schemathesis.txt (curl reproducers), $out/server.log"
exit $status
