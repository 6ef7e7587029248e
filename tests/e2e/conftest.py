"""A real Celery worker on the test PostgreSQL and Redis, for end-to-end tests."""

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Worker:
    queue: str
    log: Path

    def succeeded(self, task_name: str) -> list[str]:
        """The result lines the worker logged for finished runs of `task_name`."""
        return [line for line in self.log.read_text().splitlines() if task_name in line and "succeeded" in line]


@pytest.fixture
def celery_worker(tmp_path):
    """Start `celery worker` on a queue of its own against the test database."""
    db = connection.settings_dict
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "VAR_DIR": str(tmp_path),
    }
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "fulfillment",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while "ready" not in (tmp_path / "worker.log").read_text():
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.2)
    yield Worker(queue, tmp_path / "worker.log")
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
    log.close()


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError("condition not met in time")
