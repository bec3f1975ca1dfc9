"""Pool kinds: how each is built for a given capacity, and the tasks its subprocess serves.

One place for these decisions, used by in-process tests, ``cli`` and ``launch``.
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

from alsek.core.worker import ProcessWorkerPool, ThreadWorkerPool
from alsek.core.worker.asyncio import AsyncSingleProcessWorkerPool
from poolwork import async_work, sync_work

#: Environment variable naming the pool kind of a subprocess (``cli`` and ``launch`` read it).
KIND_VAR = "ALSEK_POOLS_KIND"
#: The task ``mechanism`` each pool kind serves.
MECHANISMS = {"thread": "thread", "process": "process", "async": "thread"}
#: Queue of the tasks subprocess pools serve.
CLI_QUEUE = "cli"
#: Function names subprocess pools serve, with their task options.
SERVED: dict[str, dict[str, Any]] = {
    "add": {"max_retries": 0},
    "sleepy": {"max_retries": 0},
    "slow_first": {"max_retries": 3, "backoff": None},
    "gauged": {"max_retries": 3, "backoff": None, "concurrency_limit": 1},
}


def work_module(kind: str) -> ModuleType:
    """The module whose functions (and ``components``/``build_task``) a pool of ``kind`` runs."""
    if kind not in MECHANISMS:
        raise ValueError(f"Unknown pool kind {kind!r}")
    return async_work if kind == "async" else sync_work


def other_work_module(kind: str) -> ModuleType:
    """The work module of the tasks a pool of ``kind`` cannot run (sync for an async pool)."""
    return sync_work if work_module(kind) is async_work else async_work


def build_pool(kind: str, tasks: list[Any], capacity: int, **options: Any) -> Any:
    """A pool of ``kind`` over ``tasks`` running at most ``capacity`` messages at once.

    The thread pool gets one process of ``capacity`` threads (``n_threads``/``n_processes`` in
    ``options`` override that); ``options`` are the pool's own keyword arguments. An async
    pool starts its futures on the running loop: build it inside the loop that runs it.
    """
    if kind == "thread":
        options = {"n_threads": capacity, "n_processes": 1, **options}
        return ThreadWorkerPool(tasks=tasks, **options)
    if kind == "process":
        return ProcessWorkerPool(tasks=tasks, n_processes=capacity, **options)
    if kind == "async":
        return AsyncSingleProcessWorkerPool(tasks=tasks, n_tasks=capacity, **options)
    raise ValueError(f"Unknown pool kind {kind!r}")


def serve(kind: str, tasks: list[Any], capacity: int, **options: Any) -> None:
    """Build a pool as ``build_pool`` does and run it here until a stop signal (an async pool
    on a new event loop, as ``alsek async-pool`` does)."""
    if kind == "async":
        asyncio.run(_serve_async(tasks, capacity, options))
    else:
        build_pool(kind, tasks, capacity, **options).run()


async def _serve_async(tasks: list[Any], capacity: int, options: dict[str, Any]) -> None:
    await build_pool("async", tasks, capacity, **options).run()


def served_tasks(work: Any, kind: str, broker: Any, tracker: Any, store: Any) -> dict[str, Any]:
    """The tasks subprocess pools serve, built by ``work`` for a pool of ``kind``."""
    common = {
        "queue": CLI_QUEUE,
        "mechanism": MECHANISMS[kind],
        "status_tracker": tracker,
        "result_store": store,
    }
    return {
        name: work.build_task(name, broker, **common, **options) for name, options in SERVED.items()
    }
