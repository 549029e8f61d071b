"""pytest plugin for scripts/mutation.sh: run only the group's tests that need no database.

MUTATION_TESTS (space-separated file-name patterns, e.g. `test_hours.py test_mutation_hours*.py`)
names the test files of the group being mutated; other `test_*.py` files are not even imported.
Unset, every file is collected.

A test needs the database when its fixture closure reaches `database_url` (the session fixture
in tests/conftest.py that creates `<db>_test`): `conn`, `client`, `engine`, `settings`, `ctx`
and the servers all depend on it. Those tests are deselected, so a mutation run never touches
PostgreSQL and never stops on "DATABASE_URL is not set".
"""

from __future__ import annotations

import fnmatch
import os
import sys
from pathlib import Path

import pytest

DB_FIXTURE = "database_url"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    patterns = os.environ.get("MUTATION_TESTS", "").split()
    name = collection_path.name
    if not (patterns and name.startswith("test_") and name.endswith(".py")):
        return None
    return True if not any(fnmatch.fnmatch(name, p) for p in patterns) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        names = getattr(item, "fixturenames", ())
        (drop if DB_FIXTURE in names else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Empty every `functools.lru_cache` in app/ before each test.

    mutmut forks each mutant's test run from a process that has already run the clean tests,
    so a memoised result computed by the original code (e.g. a compiled opening_hours
    expression) would otherwise hide a mutant in the function that computed it.
    """
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "app" or name.startswith("app.")):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and hasattr(value, "cache_info"):
                clear()
