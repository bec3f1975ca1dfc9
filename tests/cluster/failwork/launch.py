"""Run a failover pool over every failover queue until SIGTERM.

    python -m failwork.launch thread --capacity 8

``thread``: a ``ThreadWorkerPool`` with one process group; ``process``: a
``ProcessWorkerPool``. Both with the short lease of ``settings.LEASE_TTL_MS``.
"""

from __future__ import annotations

import argparse
import logging

from alsek.core.backoff import LinearBackoff
from alsek.core.worker import ProcessWorkerPool, ThreadWorkerPool
from alsek.utils.logging import setup_logging
from failwork import settings, tasks

#: Short idle waits (new messages wake the pool anyway).
IDLE_BACKOFF = LinearBackoff(factor=100, floor=100, ceiling=500, zero_override=False)


def main() -> None:
    """Build the pool from the command line and run it until a stop signal."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=("thread", "process"))
    parser.add_argument("--capacity", type=int, default=8)
    args = parser.parse_args()
    setup_logging(logging.WARNING)
    options = {
        "queues": list(settings.QUEUES),
        "lease_ttl": settings.LEASE_TTL_MS,
        "grace_period": 2_000,
        "backoff": IDLE_BACKOFF,
    }
    served = [tasks.build(tasks.broker())]
    if args.kind == "thread":
        ThreadWorkerPool(tasks=served, n_threads=args.capacity, n_processes=1, **options).run()
    else:
        ProcessWorkerPool(tasks=served, n_processes=args.capacity, **options).run()


if __name__ == "__main__":
    main()
