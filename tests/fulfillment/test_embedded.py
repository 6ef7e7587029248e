"""The embedded default of `make run`: SQLite in WAL mode and the filesystem broker, no server."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def embedded_env(var_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1", **extra)
    return env


def manage(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_migrate_and_seed_demo_on_a_fresh_sqlite_file(tmp_path):
    env = embedded_env(tmp_path)

    migrate = manage("migrate", "--noinput", env=env)
    assert migrate.returncode == 0, migrate.stderr
    seed = manage("seed_demo", env=env)
    assert seed.returncode == 0, seed.stderr
    again = manage("seed_demo", env=env)
    assert again.returncode == 0, again.stderr

    database = tmp_path / "portal.sqlite3"
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        statuses = dict(db.execute("SELECT status, COUNT(*) FROM orders_order GROUP BY status").fetchall())
        users = {row[0] for row in db.execute("SELECT username FROM auth_user")}
    assert set(statuses) == {
        "received",
        "ready",
        "on_hold",
        "allocated",
        "awaiting_approval",
        "backordered",
        "released",
        "partially_shipped",
        "shipped",
        "delivered",
        "cancelled",
    }
    assert {"coordinator", "service", "opsadmin", "admin"} <= users
    # the second run added nothing
    assert seed.stdout.splitlines()[-1] == again.stdout.splitlines()[-1]


def test_healthz_on_the_embedded_default_and_with_the_database_gone(tmp_path):
    probe = (
        "from django.test import Client; r = Client(HTTP_HOST='localhost').get('/healthz'); "
        "print(r.status_code, r.content.decode())"
    )
    ok = manage("shell", "-c", probe, env=embedded_env(tmp_path))
    assert ok.returncode == 0, ok.stderr
    status, body = ok.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == "200"
    assert json.loads(body)["broker"] == {"ok": True, "detail": "filesystem"}

    gone = manage(
        "shell", "-c", probe, env=embedded_env(tmp_path, DATABASE_URL=f"postgres://nobody@127.0.0.1:{free_port()}/none")
    )
    assert gone.returncode == 0, gone.stderr
    status, body = gone.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == "503"
    assert json.loads(body)["database"]["ok"] is False


@pytest.mark.slow
def test_run_script_serves_the_admin_and_prints_the_demo_sign_ins(tmp_path):
    port = free_port()
    env = embedded_env(tmp_path, PORT=str(port))
    log = tmp_path / "run.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["scripts/run.sh"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline, status = time.monotonic() + 120, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2) as response:
                    status = response.status
                    page = response.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        output = log.read_text()
        assert status == 200, output
        assert "Django administration" in page or "Log in" in page
        assert f"http://127.0.0.1:{port}/" in output
        for username in ("coordinator", "service", "opsadmin", "admin"):
            assert username in output
        assert "password: demo" in output
        # the Celery worker and beat started beside the web server on the filesystem broker
        worker_log, beat_log = tmp_path / "celery-worker.log", tmp_path / "celery-beat.log"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ("ready" in worker_log.read_text() and "Starting" in beat_log.read_text()):
            time.sleep(0.5)
        assert "filesystem" in worker_log.read_text() and "ready" in worker_log.read_text()
        assert "beat: Starting" in beat_log.read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    # a TERM (or Ctrl-C) stops the web server, the worker and beat
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2)
