#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the pure cores, one module group at a time, DB-free.
#
#   scripts/mutation.sh                     all four groups: hours geo network coverage
#   scripts/mutation.sh geo network/travel  a whole group, or one file of a group
#   MUTATION_RESUME=1 scripts/mutation.sh hours
#                                           re-test only the mutants the last run of the group
#                                           did not kill (after adding tests); keeps the rest
#   MUTATION_RESUME=1 MUTATION_NAMES=FILE scripts/mutation.sh geo
#                                           re-test only the mutants named in FILE (lines
#                                           "  app.…" as the table below prints them)
#   MUTATION_REPORT_ONLY=1 scripts/mutation.sh hours   print the last run's table again
#
# Each group runs in its own scratch folder .mutation/<group>/ (git-ignored): app/ and tests/
# are copied into its mutants/, the group's files are mutated, and only the DB-free tests of
# the group's test files (TESTS below) run: scripts/mutation_dbfree.py skips the other files,
# deselects every test that needs PostgreSQL and empties the app's lru_caches before each test.
# It prints killed / timeout / survived / no-tests per file and the score; mutants listed in
# scripts/mutation-equivalent.txt (equivalent, see docs/testing.md) are counted apart.
# Not part of CI's default run (several minutes per group on 2 cores). Runs under `nice -n 19`;
# MUTATION_JOBS sets the number of workers (default: the number of cores).
# Inspect a survivor:  cd .mutation/<group> && ../../.venv/bin/mutmut show NAME
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_venv

declare -A FILES TESTS
FILES[hours]="app/hours/calendar.py app/hours/evaluate.py app/hours/state.py"
TESTS[hours]="test_hours.py test_mutation_edges.py test_mutation_hours*.py"
FILES[geo]="app/geo/coords.py app/geo/links.py app/geo/validity.py"
TESTS[geo]="test_coords.py test_mutation_geo*.py"
FILES[network]="app/network/graph.py app/network/isochrone.py app/network/travel.py"
TESTS[network]="test_network_graph.py test_mutation_network*.py test_mutation_edges.py
  test_coverage_core.py"
FILES[coverage]="app/coverage/analysis.py app/coverage/derive.py app/coverage/grid.py
  app/coverage/solver.py"
TESTS[coverage]="test_coverage_core.py test_mutation_edges.py test_solver.py
  test_mutation_coverage*.py"
GROUPS_ALL="hours geo network coverage"

usage() {
  echo "usage: scripts/mutation.sh [GROUP | GROUP/FILE ...]   GROUP: $GROUPS_ALL" >&2
  exit 2
}

# Which files of which group to mutate, from the arguments.
declare -A WANT
for arg in "${@:-$GROUPS_ALL}"; do
  for a in $arg; do
    group=${a%%/*}
    [ -n "${FILES[$group]:-}" ] || usage
    if [ "$a" = "$group" ]; then
      WANT[$group]="${FILES[$group]}"
    else
      f="app/$group/${a#*/}"
      f="${f%.py}.py"
      [[ " ${FILES[$group]//$'\n'/ } " == *" $f "* ]] || usage
      WANT[$group]="${WANT[$group]:-} $f"
    fi
  done
done

toml_list() { # words → a TOML list of strings
  local out="" w
  for w in $*; do out+="\"$w\", "; done
  echo "[${out%, }]"
}

# Names of the mutants of the given files that the last run did not kill.
not_killed() {
  "$VENV/bin/python" - "$@" <<'EOF'
import json, sys
from pathlib import Path

work, files = Path(sys.argv[1]), sys.argv[2:]
for f in files:
    meta = work / "mutants" / (f + ".meta")
    if meta.exists():
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            # 1/3: a test failed; 24/36/152/255/-24: a timeout (counted as caught, as mutmut does)
            if code not in (1, 3, 24, 36, 152, 255, -24):
                print(name)
EOF
}

run_group() {
  local group=$1 work="$ROOT/.mutation/$1" names=()
  if [ "${MUTATION_REPORT_ONLY:-0}" = 1 ]; then
    [ -d "$work/mutants" ] || die "no earlier run of $group in .mutation/$group"
  elif [ "${MUTATION_RESUME:-0}" = 1 ] && [ -d "$work/mutants" ]; then
    # The work folder's config is kept as it is (a changed test selection would make mutmut
    # discard every result); new tests in the group's files are found by mutmut itself.
    if [ -n "${MUTATION_NAMES:-}" ]; then
      # only the mutants named in that file (e.g. an earlier run's survivors, as printed)
      mapfile -t names < <(grep -o '^ *app\.[^ ]*' "$MUTATION_NAMES" | tr -d ' ')
    else
      mapfile -t names < <(not_killed "$work" ${WANT[$group]})
    fi
    log "re-testing ${#names[@]} mutants of $group that were not killed"
    [ ${#names[@]} -gt 0 ] || return 0
  else
    rm -rf "$work"
    mkdir -p "$work"
    ln -s "$ROOT/app" "$work/app"
    ln -s "$ROOT/tests" "$work/tests"
    # pytest's own settings come along; mutmut's are appended to this copy only.
    cp pyproject.toml "$work/pyproject.toml"
    cat >>"$work/pyproject.toml" <<EOF

[tool.mutmut]
# The whole package is copied into mutants/ (so \`app\` and \`app.__version__\` resolve there, not
# to the editable install); only these files are mutated.
source_paths = ["app"]
only_mutate = $(toml_list "${WANT[$group]}")
pytest_add_cli_args = ["-p", "mutation_dbfree", "-q", "-p", "no:cacheprovider"]
# Which test files run is decided by MUTATION_TESTS (see scripts/mutation_dbfree.py).
pytest_add_cli_args_test_selection = ["tests"]
use_git_change_detection = false
EOF
  fi
  [ "${MUTATION_REPORT_ONLY:-0}" = 1 ] || {
    log "mutating $group: ${WANT[$group]//$'\n'/ } (tests: ${TESTS[$group]//$'\n'/ })"
    (
      cd "$work"
      # mutation_dbfree.py is imported from scripts/; DATABASE_URL is dropped so that no test
      # can reach a database.
      env -u DATABASE_URL PYTHONPATH="$ROOT/scripts" MUTATION_TESTS="${TESTS[$group]}" \
        nice -n 19 "$VENV/bin/mutmut" run --max-children "${MUTATION_JOBS:-$(nproc)}" \
        "${names[@]}" >>"$work/run.log" 2>&1
    ) || {
      tail -n 40 "$work/run.log" >&2
      die "mutmut failed for $group (full log: .mutation/$group/run.log)"
    }
  }
  "$VENV/bin/python" - "$work" "$ROOT/scripts/mutation-equivalent.txt" ${WANT[$group]} <<'EOF' |
import json, sys
from collections import Counter
from pathlib import Path

work, equivalent_file, files = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
equivalent = set()
if equivalent_file.exists():
    for line in equivalent_file.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            equivalent.add(name)
status = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout"}
print(f"{'file':28} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} "
      f"{'no-tests':>8} {'equiv':>5}  score (of non-equivalent)")
survivors = []
for f in files:
    meta = json.loads((work / "mutants" / (f + ".meta")).read_text())
    c = Counter()
    for name, code in meta["exit_code_by_key"].items():
        s = status.get(code, "suspicious" if code is not None else "not checked")
        if s in ("survived", "no tests", "suspicious") and name in equivalent:
            s = "equivalent"
        elif s in ("survived", "no tests", "suspicious", "not checked"):
            survivors.append(f"{name}  ({s})")
        c[s] += 1
    total = sum(c.values())
    caught = c["killed"] + c["timeout"]
    live = total - c["equivalent"]
    score = 100.0 * caught / live if live else 100.0
    print(f"{f[4:]:28} {total:7} {c['killed']:6} {c['timeout']:7} {c['survived']:8} "
          f"{c['no tests']:8} {c['equivalent']:5}  {score:5.1f} %"
          + (f"  ({c['suspicious']} suspicious, {c['not checked']} not checked)"
             if c["suspicious"] or c["not checked"] else ""))
if survivors:
    print("not killed (non-equivalent):")
    for s in survivors:
        print("  " + s)
EOF
    tee "$work/summary.txt"
}

for group in $GROUPS_ALL; do
  [ -n "${WANT[$group]:-}" ] && run_group "$group"
done
