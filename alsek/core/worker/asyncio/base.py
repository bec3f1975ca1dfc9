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
from alsek.core.steps.ops import Steps, T
from alsek.core.steps.outage import REDIS_OUTAGE_ERRORS
from alsek.core.worker.loop import PoolLoop
from alsek.core.worker.revocations import AsyncRevocationListener
from alsek.utils.loops import LoopName, loop_kind

log = logging.getLogger(__name__)


class AsyncBaseWorkerPool(PoolLoop, AsyncConsumer, ABC):
    """An asyncio pool of futures fed by an async consumer (arguments as ``PoolCore``)."""

    task_kind = "async"
    worker_kind = "async"
    _run_plan = staticmethod(run_plan_async)
    _revocations: AsyncRevocationListener | None = None  # listening once booted
    #: The event loop the pool is meant to run on (``alsek.utils.loops``): ``"auto"`` takes any.
    loop: LoopName = "auto"

    def _init_consumer(self, **options: Any) -> None:
        AsyncConsumer.__init__(self, **options)

    # -- the loop, awaited ---------------------------------------------------------------------

    def on_boot(self) -> None:
        """Start listening for revocations, and say the pool is online."""
        self._revocations = AsyncRevocationListener(
            self.broker, self._queue_names, self._on_revoked
        ).start()
        log.info("Async worker pool online")

    async def _let_started_begin(self) -> None:
        """Yield to the event loop once, so that the tasks just started run up to their first
        await before the loop prepares its next claim."""
        await asyncio.sleep(0)

    async def _rest(self, timeout_ms: int) -> None:
        await self.stop_signal.async_wait(timeout_ms / 1000)

    def _check_loop(self, running: asyncio.AbstractEventLoop) -> None:
        """Refuse to run on another loop than the one the pool was built for: whoever awaits
        ``run()`` chose the loop, so an explicit ``loop`` can only be checked here."""
        kind = loop_kind(running)
        if self.loop != "auto" and kind != self.loop:
            raise RuntimeError(
                f"This pool was built with loop={self.loop!r} but runs on {kind}'s loop: "
                f"start it with alsek.utils.loops.run_on_loop(main(), loop={self.loop!r})"
            )

    def _boot_lines(self) -> list[str]:
        kind = loop_kind(asyncio.get_running_loop())
        return [*super()._boot_lines(), f"Event loop: {kind} (loop={self.loop!r})"]

    async def _ready(self) -> bool:
        """Log what the pool serves and wait for Redis to answer; ``False`` if told to stop
        first.

        Raises:
            RedisAccessError: Redis refused the credentials.
        """
        for line in self._boot_lines():
            log.info(line)
        return await async_run(self._reach_redis_steps())

    async def run(self) -> None:
        """Boot, serve until stopped (``await stop()``, or SIGTERM/SIGINT when the pool was
        built in the main thread), then shut down gracefully. A pool runs once.

        Raises:
            RuntimeError: the running loop is not the one ``loop`` names.
        """
        self._check_loop(asyncio.get_running_loop())
        self._run_state.begin(self)
        self._run_state.loop = asyncio.get_running_loop()
        stop_metrics = None
        try:
            stop_metrics = self._serve_metrics()
            if not await self._ready():
                log.info("Stopped before Redis answered")
                return
            self.on_boot()
            try:
                await self.engine()
            except (KeyboardInterrupt, asyncio.CancelledError):
                log.info("Interrupted")
            finally:
                await self.on_shutdown()
        finally:
            if stop_metrics is not None:
                stop_metrics()
            self.stop_signal.close()
            self._run_state.end()

    async def stop(self, timeout: int | None = None) -> None:
        """Stop gracefully, as SIGTERM does, and return once ``run()`` has returned.

        As ``BaseWorkerPool.stop``; await it from any event loop (the pool's own, or another
        thread's). Before ``run()`` began it only asks, and returns at once.

        Args:
            timeout: how long (ms) to wait for ``run()`` to return; ``None``: no limit.

        Raises:
            TimeoutError: ``run()`` is still shutting down after ``timeout`` ms.
        """
        self.stop_signal.exit_event.set()
        state = self._run_state
        if not state.running or state.loop is None:
            return
        # The wake goes through the pool's own client, on the pool's own loop.
        asyncio.run_coroutine_threadsafe(self._wake_idle_wait(), state.loop)
        await state.async_wait(self, timeout)

    async def _wake_idle_wait(self) -> None:
        """End the pool's wait for work now rather than after its current block on Redis."""
        try:
            await self.broker.wake(self._queue_names())
        except REDIS_OUTAGE_ERRORS as error:
            log.debug("Could not wake the pool (%s); it sees the stop within a second", error)

    async def _drive(self, steps: Steps[T]) -> T:
        """Run steps that talk to Redis on the broker's client (awaited)."""
        return await async_run(steps, self.broker.backend.conn)

    async def _leave_registry(self) -> None:
        """Take the pool out of the worker registry (it is stopping for good)."""
        try:
            await self._drive(self._heartbeat.leave_steps())
        except REDIS_OUTAGE_ERRORS as error:
            log.warning("Could not leave the worker registry (%s); it ages out by itself", error)

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
            await self._leave_registry()
            log.info("Async worker pool stopped")
