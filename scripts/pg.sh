#!/usr/bin/env bash
# The private PostGIS cluster: `scripts/pg.sh start|stop|url|psql`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
case "${1:-url}" in
  start|url) ensure_system; ensure_db; echo "$DATABASE_URL" ;;
  stop) stop_db ;;
  psql) ensure_db; shift; exec psql "$DATABASE_URL" "$@" ;;
  *) die "usage: scripts/pg.sh start|stop|url|psql" ;;
esac
