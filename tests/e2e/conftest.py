"""A real Celery worker on the test PostgreSQL and Redis, for end-to-end tests."""

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.db import connection

from fulfillment.celery import app as celery_app
from tests.integrations.conftest import sample_catalogue, shop  # noqa: F401 - the same systems and catalogue

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Worker:
    """`celery worker` on a queue of its own against the test database; it can be killed and started again."""

    queue: str
    log: Path
    env: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        db = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "VAR_DIR": str(self.log.parent),
            "CELERY_QUEUE": self.queue,
            **self.env,
        }
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("a") as out:
            name = f"{self.queue}-{uuid.uuid4().hex[:4]}@%h"
            options = ["--pool=solo", "--loglevel=INFO", "-Q", self.queue, "-n", name]
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "fulfillment", "worker", *options],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while "ready" not in self.log.read_text()[offset:]:
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.2)
        return self

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, nothing acknowledged that was not finished."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def succeeded(self, task_name: str) -> list[str]:
        """The result lines the worker logged for finished runs of `task_name`."""
        return [line for line in self.log.read_text().splitlines() if task_name in line and "succeeded" in line]


@pytest.fixture
def worker_env():
    """Extra environment for the worker (settings read from it); override in a test module."""
    return {}


@pytest.fixture
def celery_worker(tmp_path, worker_env):
    """A worker on a queue of its own; tasks this process sends go to that queue while the test runs."""
    worker = Worker(f"e2e-{uuid.uuid4().hex[:8]}", tmp_path / "worker.log", dict(worker_env))
    default_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = worker.queue
    worker.start()
    yield worker
    worker.stop()
    print(worker.log.read_text()[-5000:])  # shown when the test failed
    celery_app.conf.task_default_queue = default_queue


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError("condition not met in time")
