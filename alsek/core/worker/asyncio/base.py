"""``AsyncBaseWorkerPool``: the loop of ``PoolLoop``, awaited, for asyncio pools.

The same loop as the sync pools, step for step (``async_run`` awaits the calls that are
coroutines). Revocations arrive through pub/sub on an asyncio task of their own (``revocations``).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC
from typing import Any

from alsek.core.consumer import AsyncConsumer
from alsek.core.future.outcome import run_plan_async
from alsek.core.steps.drivers import async_run
from alsek.core.worker.loop import PoolLoop
from alsek.core.worker.revocations import AsyncRevocationListener

log = logging.getLogger(__name__)


class AsyncBaseWorkerPool(PoolLoop, AsyncConsumer, ABC):
    """An asyncio pool of futures fed by an async consumer (arguments as ``PoolCore``)."""

    task_kind = "async"
    _run_plan = staticmethod(run_plan_async)
    _revocations: AsyncRevocationListener | None = None  # listening once booted

    def _init_consumer(self, **options: Any) -> None:
        AsyncConsumer.__init__(self, **options)

    # -- the loop, awaited ---------------------------------------------------------------------

    def on_boot(self) -> None:
        """Log what the pool serves and start listening for revocations."""
        for line in self._boot_lines():
            log.info(line)
        self._revocations = AsyncRevocationListener(
            self.broker, self._queue_names, self._on_revoked
        ).start()
        log.info("Async worker pool online")

    async def run(self) -> None:
        """Boot, run until a stop signal, shut down gracefully."""
        self.on_boot()
        try:
            await self.engine()
        except (KeyboardInterrupt, asyncio.CancelledError):
            log.info("Interrupted")
        finally:
            await self.on_shutdown()

    async def engine(self) -> None:
        """Claim and run messages until told to stop; Redis outages are waited out."""
        await async_run(self._engine_steps())

    async def _on_revoked(self, uuid: str) -> None:
        await async_run(self._stop_revoked_steps(uuid))

    async def on_shutdown(self) -> None:
        """Drain within the grace period, then stop and release what is left."""
        try:
            await async_run(self._drain_steps())
        finally:
            if self._revocations is not None:
                self._revocations.close()
            log.info("Async worker pool stopped")
