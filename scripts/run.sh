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

# Worker and beat as two processes (an embedded beat, -B, can hang the worker's warm shutdown),
# each in a session of its own: Ctrl-C must reach only this script, which then stops the worker
# itself. A TERM that also hit the worker's pool children directly could leave it waiting for them.
pids=()
setsid .venv/bin/celery -A fulfillment worker --loglevel=INFO --concurrency=2 >"$VAR/celery-worker.log" 2>&1 &
pids+=($!)
setsid .venv/bin/celery -A fulfillment beat --loglevel=INFO --schedule "$VAR/celerybeat-schedule" >"$VAR/celery-beat.log" 2>&1 &
pids+=($!)

# SIMULATE=1 make run: the partner simulator (manage.py simulate_partners) plays a Shopify storefront, an ERP and
# a WMS against this portal (sim-shop, sim-erp, sim-wms on ports 8101-8103), so orders arrive and move on their own.
# It waits for the web server below, and stops with the rest.
simulator_note=""
if [ "${SIMULATE:-0}" = "1" ]; then
  setsid $PY -u manage.py simulate_partners --portal-url "http://$HOST:$PORT" >"$VAR/simulator.log" 2>&1 &
  pids+=($!)
  simulator_note="
  Partner simulator (sim-shop, sim-erp, sim-wms on ports 8101-8103) logs to $VAR/simulator.log."
fi

stop_all() {
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 30); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && return 0
    sleep 0.5
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM

cat <<BANNER

  Fulfillment exception portal: http://$HOST:$PORT/   (admin: http://$HOST:$PORT/admin/)
  Demo sign-ins (password: ${DEMO_PASSWORD:-demo}):
    coordinator   warehouse coordinator
    service       customer service
    opsadmin      operations admin
    admin         superuser
  Celery worker and beat log to $VAR/celery-worker.log and $VAR/celery-beat.log.$simulator_note
  Stop with Ctrl-C.

BANNER

# In the background and waited for, so Ctrl-C or a TERM reaches the trap at once.
$PY manage.py runserver "$HOST:$PORT" --noreload &
pids+=($!)
wait "${pids[-1]}"
