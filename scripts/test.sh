#!/usr/bin/env bash
# Runs the whole suite against a throwaway PostgreSQL and Redis, then stops them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Style and layers first: a violation fails the run before any server starts.
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-cache

services=$(scripts/test-services.sh start)
trap 'scripts/test-services.sh stop' EXIT
eval "$services"
export DATABASE_URL REDIS_URL
.venv/bin/python -m pytest "$@"
