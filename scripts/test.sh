#!/usr/bin/env bash
# One command for all tests: install what is missing, start PostGIS (unless DATABASE_URL is set)
# and run the whole suite against it. Tests use their own databases (<db>_test, <db>_e2e),
# created afresh, so the demo data is never touched. Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_system
ensure_browser
ensure_venv
yizhan web assets >/dev/null # Leaflet, markercluster, Swagger UI into .cache/ (once)
ensure_db
exec python -m pytest "$@"
