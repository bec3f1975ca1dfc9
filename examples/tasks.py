"""The example tasks: plain work, a flaky task that succeeds on its third attempt, a slow task
(to revoke), and three steps of a callback chain."""

from __future__ import annotations

import time

from alsek.core.backoff import ConstantBackoff
from alsek.core.message import Message
from alsek.core.task import task
from examples.settings import broker, result_store, status_tracker

tracked = {"status_tracker": status_tracker, "result_store": result_store}


@task(broker, queue="demo", **tracked)
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@task(broker, queue="demo", max_retries=3, backoff=ConstantBackoff(300, floor=0), **tracked)
def flaky(message: Message) -> str:
    """Fail on the first two attempts, succeed on the third (retried after 300 ms)."""
    if message.retries < 2:
        raise ConnectionError(f"attempt {message.retries + 1} failed, as planned")
    return f"succeeded on attempt {message.retries + 1}"


@task(broker, queue="demo", **tracked)
def slow(seconds: float) -> str:
    """Sleep, so that it can be revoked while queued or running."""
    time.sleep(seconds)
    return f"slept {seconds}s"


@task(broker, queue="demo", **tracked)
def fetch(url: str) -> dict[str, object]:
    """First step of a chain: pretend to fetch a page."""
    return {"url": url, "length": len(url) * 100}


@task(broker, queue="demo", **tracked)
def measure(message: Message) -> int:
    """Second step: takes the previous step's result from its message."""
    return int(message.previous_result["length"]) // 2


@task(broker, queue="demo", **tracked)
def report(message: Message) -> str:
    """Last step of the chain."""
    return f"chain done: {message.previous_result}"
