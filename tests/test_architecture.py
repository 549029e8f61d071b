"""The layer contract: import-linter's contracts (.importlinter) hold, and no two modules of
app import each other, however indirectly (a module-level cycle check on grimp's graph)."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import grimp
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert "BROKEN" not in done.stdout


def module_cycles(package: str) -> list[list[str]]:
    """Groups of modules that import each other (strongly connected components > 1)."""
    graph = grimp.build_graph(package, cache_dir=None)
    mods = sorted(graph.modules)
    index = {m: i for i, m in enumerate(mods)}
    rows, cols = [], []
    for m in mods:
        for dep in graph.find_modules_directly_imported_by(m):
            if dep in index:
                rows.append(index[m])
                cols.append(index[dep])
    matrix = csr_matrix(([1] * len(rows), (rows, cols)), shape=(len(mods), len(mods)))
    _, labels = connected_components(matrix, directed=True, connection="strong")
    groups: dict[int, list[str]] = defaultdict(list)
    for m, label in zip(mods, labels, strict=True):
        groups[int(label)].append(m)
    return [g for g in groups.values() if len(g) > 1]


def test_no_module_imports_itself_through_others():
    assert module_cycles("app") == []


def test_the_cycle_check_sees_a_cycle(tmp_path, monkeypatch):
    """The oracle is not blind: a two-module cycle in a scratch package is reported."""
    pkg = tmp_path / "cyclic"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from cyclic import b\n")
    (pkg / "b.py").write_text("from cyclic import a\n")
    (pkg / "c.py").write_text("from cyclic import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert module_cycles("cyclic") == [["cyclic.a", "cyclic.b"]]
