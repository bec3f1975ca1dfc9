"""Where the dashboard's data comes from: ``AsyncAdmin`` awaited for an ``AsyncBroker``,
``Admin`` in Starlette's thread pool for a ``Broker`` (the event loop never blocks on Redis)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool

from alsek.admin import Admin, AsyncAdmin
from alsek.core.broker import AsyncBroker, Broker

#: Names of the admin calls the dashboard makes.
READS = ("queues", "workers", "message", "messages", "dead", "throughput")
ACTIONS = ("pause", "resume", "purge", "revoke", "run_now", "requeue_dead", "purge_dead")


class AdminSource:
    """One awaitable door to the admin of ``broker``, whatever its kind.

    Args:
        broker: the broker whose queues the dashboard shows (sync or async).
        tasks: the tasks of the package the dashboard was started for (for the Triggers page).
    """

    def __init__(self, broker: Broker | AsyncBroker, tasks: Sequence[Any] = ()) -> None:
        if isinstance(broker, AsyncBroker):
            self.admin: Admin | AsyncAdmin = AsyncAdmin(broker)
        elif isinstance(broker, Broker):
            self.admin = Admin(broker)
        else:
            raise TypeError(
                f"create_app needs a Broker or an AsyncBroker, got {type(broker).__name__}"
            )
        self.tasks = list(tasks)

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``admin.<name>(*args, **kwargs)``, awaited, or run in a worker thread."""
        if name not in READS + ACTIONS:
            raise KeyError(f"the dashboard makes no admin call {name!r}")
        method = getattr(self.admin, name)
        if isinstance(self.admin, AsyncAdmin):
            return await method(*args, **kwargs)
        return await run_in_threadpool(method, *args, **kwargs)
