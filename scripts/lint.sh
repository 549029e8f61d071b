#!/usr/bin/env bash
# Static checks: ruff (lint + format check) and mypy.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_venv
ruff check .
ruff format --check .
mypy app
