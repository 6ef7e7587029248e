#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis for the test suite, under var/ on free loopback ports.
#   scripts/test-services.sh start   -> prints `export DATABASE_URL=... REDIS_URL=...`
#   scripts/test-services.sh stop
# As root it installs the Debian packages it needs when they are missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VAR="$ROOT/var/test-services"
PGDATA="$VAR/pg"
REDISDIR="$VAR/redis"

log() { echo "test-services: $*" >&2; }

need_packages() {
  local missing=()
  pg_bindir >/dev/null 2>&1 || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root"
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${missing[@]}" >&2; }
}

pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] || return 1
  echo "$dir"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# PostgreSQL refuses to run as root: run the cluster as the postgres system user,
# which needs to reach the data directory through every parent folder.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

open_path_for_postgres() {
  [ "$(id -u)" -eq 0 ] || return 0
  local dir="$VAR"
  while [ "$dir" != "/" ]; do
    chmod o+x "$dir" 2>/dev/null || true
    dir=$(dirname "$dir")
  done
}

start() {
  need_packages
  stop >/dev/null 2>&1 || true
  rm -rf "$VAR"
  mkdir -p "$PGDATA" "$REDISDIR"
  open_path_for_postgres
  [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$PGDATA"
  local bindir pg_port redis_port
  bindir=$(pg_bindir)
  pg_port=$(free_port)
  redis_port=$(free_port)
  as_pg "$bindir/initdb" -D "$PGDATA" -U postgres --auth=trust --no-sync -E UTF8 >"$VAR/initdb.log" 2>&1 \
    || { cat "$VAR/initdb.log" >&2; exit 1; }
  # Durability is pointless for a throwaway cluster; fsync off keeps the suite fast.
  as_pg "$bindir/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >&2
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$REDISDIR" --save '' --appendonly no \
    --daemonize yes --pidfile "$REDISDIR/redis.pid" --logfile "$REDISDIR/redis.log"
  for _ in $(seq 50); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  as_pg "$bindir/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres fulfillment
  echo "$pg_port" >"$VAR/pg.port"
  echo "$redis_port" >"$VAR/redis.port"
  log "PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port"
  echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/fulfillment REDIS_URL=redis://127.0.0.1:$redis_port/0"
}

stop() {
  local bindir
  if [ -f "$PGDATA/postmaster.pid" ] && bindir=$(pg_bindir); then
    as_pg "$bindir/pg_ctl" -D "$PGDATA" -m immediate -w stop >&2 || true
  fi
  if [ -f "$REDISDIR/redis.pid" ]; then
    kill "$(cat "$REDISDIR/redis.pid")" 2>/dev/null || true
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
