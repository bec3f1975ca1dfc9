"""A process that schedules the same trigger task as its siblings (for the trigger tests)."""

from __future__ import annotations

import os
from typing import Any

from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.triggers.interval import IntervalTrigger

from alsek.core.broker import Broker
from alsek.core.task import TriggerTask
from alsek.storage.backends.redis.sync import RedisBackend


def tick() -> None:
    """The scheduled function (it takes no parameters, as triggers require)."""


def schedule_tick(url: str, namespace: str, firings: Any, stop: Any) -> None:
    """Schedule ``tick`` every second until ``stop`` is set; report each firing's
    (pid, scheduled time in ms) on ``firings``."""
    broker = Broker(RedisBackend(url, namespace=namespace))
    task = TriggerTask(tick, trigger=IntervalTrigger(seconds=1), broker=broker, queue="q")

    def report(event: JobExecutionEvent) -> None:
        firings.put((os.getpid(), round(event.scheduled_run_time.timestamp() * 1000)))

    task.scheduler.add_listener(report, EVENT_JOB_EXECUTED)
    task.generate()
    stop.wait(60)
    task.shutdown()
