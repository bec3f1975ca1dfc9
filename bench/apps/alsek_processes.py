"""alsek tasks for ``alsek process-pool apps.alsek_processes``: messages run in warm processes,
whose tally is written as a thread pool's is (and once more when a process exits).
"""

from __future__ import annotations

import time

from alsek.core.task import task
from apps import completions
from apps.alsek_threads import broker, tracking_options

QUEUE = "processes"


@task(broker, queue=QUEUE, mechanism="process", **tracking_options())
def noop() -> None:
    """Nothing but the tally."""
    completions.done()


@task(broker, queue=QUEUE, mechanism="process", **tracking_options())
def sleep_1ms() -> None:
    """A 1 ms wait."""
    time.sleep(0.001)
    completions.done()


def submit(task_name: str, count: int) -> None:
    """Queue ``count`` messages for ``task_name`` with ``generate_many``."""
    globals()[task_name].generate_many(args_list=[()] * count)


def send(task_name: str) -> None:
    """Submit one message for ``task_name`` with ``generate``."""
    globals()[task_name].generate()
