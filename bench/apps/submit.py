"""Submit messages for a benchmark app: ``python -m apps.submit MODULE TASK COUNT [--mode M]``.

``MODULE`` is one of the apps (``apps.alsek_threads``, ``peers.dramatiq_app``...); each defines
``submit(task_name, count)``, its framework's bulk submit, and ``send(task_name, *args)``, one
submit of one message (a coroutine function in the async apps, which may also define
``startup()`` and ``shutdown()`` coroutines). ``bench/pools.py`` runs this with the app's
virtualenv; ``peers/bullmq/producer.mjs`` takes the same arguments and speaks the same protocol.

Modes:

* ``backlog``: ``COUNT`` messages with ``submit``, untimed, before the worker starts.
* ``one-by-one``: ``COUNT`` messages with ``send``, each awaited before the next: the trickle
  mode's producer, and the single-submit rows.
* ``paced``: ``COUNT`` messages of the ``latency`` task, each carrying ``time.time()`` at its
  submit, with a pause drawn from ``--gap-min-ms`` to ``--gap-max-ms`` between them, so that
  each finds the pool idle.

The last two talk to the benchmark over stdin/stdout: the producer first sends ``--warmup``
no-op messages (connections, scripts, the worker's first claims), prints ``ready``, waits for
a line on stdin, submits, and prints ``{"seconds": ..., "cpu_seconds": ...}`` of its submits.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import random
import sys
import time
from types import ModuleType
from typing import Any

MODES = ("backlog", "one-by-one", "paced")
TASKS = ("noop", "sleep_1ms", "latency")


async def _send(app: ModuleType, task_name: str, *args: Any) -> None:
    """One submit with the app's ``send``, awaited when the app is async."""
    sent = app.send(task_name, *args)
    if inspect.isawaitable(sent):
        await sent


async def _hook(app: ModuleType, name: str) -> None:
    hook = getattr(app, name, None)
    if hook is not None:
        await hook()


async def _handshake(app: ModuleType, options: argparse.Namespace) -> None:
    """Warm up, say ``ready``, wait for ``go``, submit one at a time, report the time."""
    for _ in range(options.warmup):
        await _send(app, "noop")
    print("ready", flush=True)
    sys.stdin.readline()
    low, high = options.gap_min_ms / 1000, options.gap_max_ms / 1000
    cpu_before, started = time.process_time(), time.perf_counter()
    for _ in range(options.count):
        if options.mode == "paced":
            await _send(app, "latency", time.time())
            await asyncio.sleep(random.uniform(low, high))
        else:
            await _send(app, options.task)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_before
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds}), flush=True)


async def _produce(app: ModuleType, options: argparse.Namespace) -> None:
    await _hook(app, "startup")
    try:
        await _handshake(app, options)
    finally:
        await _hook(app, "shutdown")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line shared with ``peers/bullmq/producer.mjs``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("module", help="the app module, e.g. apps.alsek_threads")
    parser.add_argument("task", choices=TASKS, help="the task (paced: always latency)")
    parser.add_argument("count", type=int)
    parser.add_argument("--mode", choices=MODES, default="backlog")
    parser.add_argument("--warmup", type=int, default=20, help="no-op messages sent first")
    parser.add_argument("--gap-min-ms", type=float, default=5.0, help="paced: shortest pause")
    parser.add_argument("--gap-max-ms", type=float, default=15.0, help="paced: longest pause")
    return parser.parse_args(argv)


def main() -> None:
    """Parse the command line and submit."""
    options = parse_args()
    app = importlib.import_module(options.module)
    if options.mode == "backlog":
        app.submit(options.task, options.count)
    else:
        asyncio.run(_produce(app, options))


if __name__ == "__main__":
    main()
