"""Run a pool over the served tasks with options the CLI does not offer (a short lease).

    python -m faultwork.launch thread --capacity 8 --lease-ttl 1500

``thread`` is a ``ThreadWorkerPool`` with one process group, ``process`` a
``ProcessWorkerPool``, ``async`` an ``AsyncSingleProcessWorkerPool``. It runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from alsek.core.backoff import LinearBackoff
from alsek.core.worker import ProcessWorkerPool, ThreadWorkerPool
from alsek.core.worker.asyncio import AsyncSingleProcessWorkerPool
from alsek.utils.logging import setup_logging

#: Idle waits as the CLI's, but short (new messages wake the pool anyway).
IDLE_BACKOFF = LinearBackoff(factor=100, floor=100, ceiling=500, zero_override=False)


def main() -> None:
    """Build the pool from the command line and run it until a stop signal."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=("thread", "process", "async"))
    parser.add_argument("--capacity", type=int, default=8)
    parser.add_argument("--lease-ttl", type=int, default=30_000)
    parser.add_argument("--grace-period", type=int, default=2_000)
    args = parser.parse_args()
    setup_logging(logging.INFO)
    options = {
        "lease_ttl": args.lease_ttl,
        "grace_period": args.grace_period,
        "backoff": IDLE_BACKOFF,
    }
    if args.kind == "async":
        asyncio.run(_serve_async(args.capacity, options))
        return
    from faultwork import tasks

    served = list(tasks.TASKS.values())
    if args.kind == "thread":
        pool = ThreadWorkerPool(tasks=served, n_threads=args.capacity, n_processes=1, **options)
    else:
        pool = ProcessWorkerPool(tasks=served, n_processes=args.capacity, **options)
    pool.run()


async def _serve_async(capacity: int, options: dict[str, object]) -> None:
    from faultwork import async_tasks

    served = list(async_tasks.TASKS.values())
    await AsyncSingleProcessWorkerPool(tasks=served, n_tasks=capacity, **options).run()


if __name__ == "__main__":
    main()
