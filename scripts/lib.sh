# shellcheck shell=bash
# Shared set-up for scripts/demo.sh and scripts/test.sh. Source it; it defines functions only.
#
#   ensure_system   Debian packages: PostgreSQL + matching PostGIS, Python venv support
#   ensure_browser  Debian's Chromium (+ driver, CJK fonts) for the real-browser tests
#   ensure_venv     .venv with the project and its dev tools installed (re-run when pyproject changes)
#   ensure_db       export DATABASE_URL: the caller's, or a private cluster in .pgdata/
#
# The private cluster never touches a server someone else started: its own data folder, its own
# port (55432 or the next free one), its own socket folder, a generated password.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGROOT="${YIZHAN_PGROOT:-$ROOT/.pgdata}"
VENV="$ROOT/.venv"

log() { printf '\033[1;34m[yizhan]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[yizhan] error:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@" || die "needs root for: $*"
  else die "needs root (or sudo) for: $*"
  fi
}

APT_UPDATED=0
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

pg_major() {
  # The newest PostgreSQL server installed; install Debian's default one if there is none.
  local v
  v=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1 || true)
  if [ -z "$v" ] || [ ! -x "/usr/lib/postgresql/$v/bin/postgres" ]; then
    apt_install postgresql >&2
    v=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
  fi
  echo "$v"
}

python_ok() {
  command -v python3 >/dev/null 2>&1 &&
    python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

ensure_system() {
  python_ok || apt_install python3 python3-venv python3-pip
  python_ok || die "Python 3.11+ with venv is required"
  command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
  if [ -z "${DATABASE_URL:-}" ]; then
    local v
    v=$(pg_major)
    apt_install "postgresql-$v-postgis-3"
  fi
}

ensure_browser() {
  # Playwright (a dev dependency) drives Debian's /usr/bin/chromium; `playwright install`
  # (a browser build of its own) is never used.
  apt_install chromium chromium-driver fonts-noto-cjk
}

ensure_venv() {
  local stamp="$VENV/.installed" want
  want=$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv in .venv"
    python3 -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing Python dependencies (pip install -e '.[dev]')"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[dev]"
    echo "$want" >"$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

port_free() {
  python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

# Run a PostgreSQL binary as the cluster owner (PostgreSQL refuses to run as root).
pg_run() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_db() {
  if [ -n "${DATABASE_URL:-}" ]; then
    log "using DATABASE_URL from the environment"
    return 0
  fi
  local v bin data run port pw
  v=$(pg_major)
  bin="/usr/lib/postgresql/$v/bin"
  data="$PGROOT/$v/data"
  run="$PGROOT/run"
  mkdir -p "$PGROOT"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "the 'postgres' system user is missing (reinstall postgresql)"
    chown postgres: "$PGROOT"
    chmod 700 "$PGROOT"
    runuser -u postgres -- test -x "$PGROOT" ||
      die "user postgres cannot reach $PGROOT; clone the project somewhere world-traversable or set YIZHAN_PGROOT"
  fi
  if [ ! -s "$PGROOT/password" ]; then
    python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$PGROOT/password"
  fi
  pw=$(cat "$PGROOT/password")
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising a private PostgreSQL $v cluster in ${data#"$ROOT"/}"
    pg_run mkdir -p "$data" "$run"
    local pwfile="$PGROOT/pwfile"
    printf '%s\n' "$pw" >"$pwfile"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$pwfile"
    pg_run "$bin/initdb" -D "$data" -U yizhan --pwfile="$pwfile" --auth=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
  fi
  pg_run mkdir -p "$run"
  if pg_run "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    port=$(cat "$PGROOT/port")
  else
    port=$(cat "$PGROOT/port" 2>/dev/null || echo "${YIZHAN_PG_PORT:-55432}")
    while ! port_free "$port"; do port=$((port + 1)); done
    echo "$port" >"$PGROOT/port"
    log "starting PostgreSQL $v on 127.0.0.1:$port"
    # synchronous_commit stays on: a write is acknowledged only once it would survive a crash.
    pg_run "$bin/pg_ctl" -D "$data" -l "$PGROOT/postgres.log" -w -t 60 \
      -o "-p $port -k $run -c listen_addresses=127.0.0.1" \
      start >/dev/null || die "PostgreSQL did not start; see $PGROOT/postgres.log"
  fi
  export PGPASSWORD="$pw"
  psql -h 127.0.0.1 -p "$port" -U yizhan -d postgres -Atqc \
    "SELECT 1 FROM pg_database WHERE datname = 'yizhan'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$port" -U yizhan -d postgres -qc "CREATE DATABASE yizhan" >/dev/null
  unset PGPASSWORD
  export DATABASE_URL="postgresql://yizhan:$pw@127.0.0.1:$port/yizhan"
}

stop_db() {
  local v data
  v=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
  data="$PGROOT/$v/data"
  [ -f "$data/PG_VERSION" ] || return 0
  pg_run "/usr/lib/postgresql/$v/bin/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
}
