"""What middleware costs a run: client CPU per message of a run and its outcome, I/O stubbed.

A message goes through what every future does (``_run_task``: ``current_message``,
``before_process``, the task; ``_finish_run``: the outcome plan with its hooks), with the
broker's ack replaced by a stub, so only Python's time is left. Measured with no middleware,
and with a middleware overriding every per-message hook with a no-op. Run it on another
checkout (``PYTHONPATH=<checkout>``) to compare with code that has no middleware at all.

Run: ``.venv/bin/python bench/outcome_cpu.py`` (a few seconds; no Redis needed).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from alsek.core.broker import Broker
from alsek.core.future.sync import _finish_run, _run_task
from alsek.core.message import Message
from alsek.core.middleware import Middleware
from alsek.core.task import Task
from alsek.storage.backends import RedisBackend

ROUNDS = 10
PER_ROUND = 2_000


def add(a: int, b: int) -> int:
    return a + b


class NoOp(Middleware):
    """Every hook a successful run meets, doing nothing."""

    def before_process(self, message: Message) -> None:
        pass

    def after_process(self, message: Message, result: Any, exception: Any) -> None:
        pass

    def after_ack(self, message: Message) -> None:
        pass


def stubbed_task(with_middleware: bool) -> Task[Any, Any]:
    broker = Broker(RedisBackend("redis://localhost:1/0"))  # never connects
    broker.ack = lambda message, **options: True  # type: ignore[method-assign]
    if with_middleware:
        broker.add_middleware(NoOp())
    return Task(add, broker=broker, queue="q", max_retries=0)


def microseconds_per_message(task: Task[Any, Any]) -> list[float]:
    """Per round, the mean µs per message (after a warm-up round)."""
    rounds = []
    for index in range(ROUNDS + 1):
        messages = [Message("add", queue="q", args=(1, 2)) for _ in range(PER_ROUND)]
        started = time.perf_counter()
        for message in messages:
            result, error = _run_task(task, message)
            _finish_run(task, message, result, error)
        if index:
            rounds.append((time.perf_counter() - started) / PER_ROUND * 1e6)
    return rounds


def main() -> None:
    for label, with_middleware in (("no middleware", False), ("a no-op middleware", True)):
        rounds = microseconds_per_message(stubbed_task(with_middleware))
        print(
            f"{label:>20}: {min(rounds):6.2f} µs best, {statistics.median(rounds):6.2f} µs "
            "median per message"
        )


if __name__ == "__main__":
    main()
