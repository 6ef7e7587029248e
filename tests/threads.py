"""Run test code on several threads at once, each with its own database connection."""

import threading
from collections.abc import Callable

from django.db import connection


def run_together(workers: int, work: Callable[[int], None]) -> list[BaseException]:
    """Call work(0) .. work(workers - 1) on threads released at the same moment; give back what they raised.

    Each thread closes the connection Django opened for it, so the test database can be dropped.
    """
    start, failures = threading.Barrier(workers), []

    def run(index: int) -> None:
        try:
            start.wait()
            work(index)
        except BaseException as failure:
            failures.append(failure)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures
