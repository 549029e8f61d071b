#!/usr/bin/env bash
# Static checks: ruff (lint + format check), mypy and the import contracts (.importlinter).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_venv
ruff check .
ruff format --check .
mypy app
lint-imports
