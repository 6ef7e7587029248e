#!/usr/bin/env bash
# The whole portal on one machine with no server installed: SQLite (WAL) and
# Celery's filesystem broker under var/, unless DATABASE_URL / REDIS_URL say otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBUG="${DEBUG:-1}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
VAR="${VAR_DIR:-var}"
PY=.venv/bin/python
mkdir -p "$VAR"

$PY manage.py migrate --noinput
$PY manage.py seed_demo

.venv/bin/celery -A fulfillment worker --beat --loglevel=INFO --concurrency=2 \
  --schedule "$VAR/celerybeat-schedule" >"$VAR/celery.log" 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM

cat <<BANNER

  Fulfillment exception portal: http://$HOST:$PORT/   (admin: http://$HOST:$PORT/admin/)
  Demo sign-ins (password: ${DEMO_PASSWORD:-demo}):
    coordinator   warehouse coordinator
    service       customer service
    opsadmin      operations admin
    admin         superuser
  Celery worker and beat log to $VAR/celery.log. Stop with Ctrl-C.

BANNER

$PY manage.py runserver "$HOST:$PORT" --noreload
