"""Pool kinds: how each is built for a given capacity, and the tasks its subprocess serves.

One place for these decisions, used by in-process tests, ``cli`` and ``launch``. An async kind
adds its builder and work module here.
"""

from __future__ import annotations

from typing import Any

from alsek.core.worker import ProcessWorkerPool, ThreadWorkerPool
from poolwork import sync_work

#: Environment variable naming the pool kind of a subprocess (``cli`` and ``launch`` read it).
KIND_VAR = "ALSEK_POOLS_KIND"
#: The task ``mechanism`` each pool kind serves.
MECHANISMS = {"thread": "thread", "process": "process"}
#: Queue of the tasks subprocess pools serve.
CLI_QUEUE = "cli"
#: Function names subprocess pools serve, with their task options.
SERVED: dict[str, dict[str, Any]] = {
    "add": {"max_retries": 0},
    "sleepy": {"max_retries": 0},
    "slow_first": {"max_retries": 3, "backoff": None},
}


def work_module(kind: str) -> Any:
    """The module whose functions (and ``components``/``build_task``) a pool of ``kind`` runs."""
    if kind not in MECHANISMS:
        raise ValueError(f"Unknown pool kind {kind!r}")
    return sync_work


def build_pool(kind: str, tasks: list[Any], capacity: int, **options: Any) -> Any:
    """A pool of ``kind`` over ``tasks`` running at most ``capacity`` messages at once.

    The thread pool gets one process of ``capacity`` threads (``n_threads``/``n_processes`` in
    ``options`` override that); ``options`` are the pool's own keyword arguments.
    """
    if kind == "thread":
        options = {"n_threads": capacity, "n_processes": 1, **options}
        return ThreadWorkerPool(tasks=tasks, **options)
    if kind == "process":
        return ProcessWorkerPool(tasks=tasks, n_processes=capacity, **options)
    raise ValueError(f"Unknown pool kind {kind!r}")


def serve(kind: str, tasks: list[Any], capacity: int, **options: Any) -> None:
    """Build a pool as ``build_pool`` does and run it here until a stop signal."""
    build_pool(kind, tasks, capacity, **options).run()


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
