"""The sync pools' bases: ``BaseWorkerPool`` for every sync pool, ``SlotWorkerPool`` for those
that claim for, and run, futures of their own (the loop of ``PoolLoop`` with blocking calls).

Revocations reach running messages through pub/sub at once (``revocations``); the loop's
periodic check backs that up.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from typing import Any

from alsek.core.consumer import Consumer
from alsek.core.future.outcome import run_plan
from alsek.core.steps.batching import unbatched
from alsek.core.steps.drivers import run
from alsek.core.steps.ops import Steps, T
from alsek.core.steps.outage import REDIS_OUTAGE_ERRORS
from alsek.core.worker.core import PoolCore
from alsek.core.worker.loop import PoolLoop
from alsek.core.worker.revocations import RevocationListener

log = logging.getLogger(__name__)


class BaseWorkerPool(PoolCore, Consumer, ABC):
    """A sync pool fed by a consumer: it boots, runs its engine until a stop signal, and shuts
    down gracefully. Arguments as ``PoolCore``.
    """

    task_kind = "sync"

    def _init_consumer(self, **options: Any) -> None:
        Consumer.__init__(self, **options)

    @abstractmethod
    def on_boot(self) -> None:
        """Get ready to serve, and say so in the log."""

    @abstractmethod
    def engine(self) -> None:
        """Serve until told to stop."""

    @abstractmethod
    def on_shutdown(self) -> None:
        """Let running messages finish within the grace period, then stop what is left."""

    def _rest(self, timeout_ms: int) -> None:
        self.stop_signal.wait(timeout_ms)

    def _ready(self) -> bool:
        """Log what the pool serves and wait for Redis to answer; ``False`` if told to stop
        first.

        Raises:
            RedisAccessError: Redis refused the credentials.
        """
        for line in self._boot_lines():
            log.info(line)
        return run(self._reach_redis_steps())

    def _drive(self, steps: Steps[T]) -> T:
        """Run steps that talk to Redis on the broker's client (blocking)."""
        return run(steps, self.broker.backend.conn)

    def _beat_if_due(self) -> None:
        beat = self._due_beat()
        if beat is not None:
            self._drive(beat)

    def _leave_registry(self) -> None:
        """Take the pool out of the worker registry (it is stopping for good)."""
        if not self.registers:
            return
        try:
            self._drive(self._heartbeat.leave_steps())
        except REDIS_OUTAGE_ERRORS as error:
            log.warning("Could not leave the worker registry (%s); it ages out by itself", error)

    def run(self) -> None:
        """Boot, serve until stopped (``stop()``, or SIGTERM/SIGINT when the pool was built in
        the main thread), then shut down gracefully.

        Blocks: call it in a thread of its own to keep going meanwhile. A pool runs once.
        """
        self._run_state.begin(self)
        stop_metrics = None
        try:
            stop_metrics = self._serve_metrics()
            if not self._ready():
                log.info("Stopped before Redis answered")
                return
            self.on_boot()
            try:
                self.engine()
            except KeyboardInterrupt:
                log.info("Keyboard interrupt")
            finally:
                self.on_shutdown()
        finally:
            if stop_metrics is not None:
                stop_metrics()
            self.stop_signal.close()
            self._run_state.end()

    def stop(self, timeout: int | None = None) -> None:
        """Stop gracefully, as SIGTERM does, and return once ``run()`` has returned.

        The pool stops claiming, lets running messages finish within its ``grace_period``,
        then stops and releases the rest, so they run again at once elsewhere. An idle pool
        sees the stop at once. From the thread running ``run()``, or before ``run()`` began,
        it only asks (``run()`` then returns as soon as it can) and returns at once.

        Args:
            timeout: how long (ms) to wait for ``run()`` to return; ``None``: no limit.

        Raises:
            TimeoutError: ``run()`` is still shutting down after ``timeout`` ms.
        """
        self.stop_signal.exit_event.set()
        if not self._run_state.running or self._run_state.in_run_thread():
            return
        self._wake_idle_wait()
        self._run_state.wait(self, timeout)

    def _wake_idle_wait(self) -> None:
        """End the pool's wait for work now rather than after its current block on Redis."""
        try:
            self.broker.wake(self._queue_names())
        except REDIS_OUTAGE_ERRORS as error:
            log.debug("Could not wake the pool (%s); it sees the stop within a second", error)


class SlotWorkerPool(PoolLoop, BaseWorkerPool):
    """A sync pool with slots of its own: it claims for its free slots and runs the messages
    as futures (in threads, processes or inline); see the subclasses for how.
    """

    _run_plan = staticmethod(run_plan)
    _revocations: RevocationListener | None = None  # listening once booted

    # -- the loop, with blocking calls ----------------------------------------------------------

    def _let_started_begin(self) -> None:
        """Hand the GIL over for a moment, so that the worker threads just woken take it
        now rather than once the loop blocks on its next round trip (a message started at
        idle began about 0.4 ms later without it). Not while work is backed up: there the
        loop's next claim is what the slots wait for, and taking the GIL back cost it a
        quarter of its time."""
        if not self._backlogged:
            time.sleep(0)

    def on_boot(self) -> None:
        """Start listening for revocations, and say the pool is online."""
        self._listen_for_revocations()
        log.info("Worker pool online")

    def _listen_for_revocations(self) -> None:
        self._revocations = RevocationListener(
            self.broker, self._queue_names, self._on_revoked
        ).start()

    def _on_revoked(self, uuid: str) -> None:
        run(self._stop_revoked_steps(uuid))

    def engine(self) -> None:
        """Claim and run messages until told to stop; Redis outages are waited out. The
        loop's round trips are not queued behind the worker threads' acks."""
        with unbatched():
            run(self._engine_steps())

    def _maintain(self) -> None:
        run(self._maintain_steps())

    def on_shutdown(self) -> None:
        """Drain within the grace period, then stop and release what is left."""
        self._drain_and_release()
        log.info("Worker pool stopped")

    def _drain_and_release(self) -> None:
        try:
            run(self._drain_steps())
        finally:
            if self._revocations is not None:
                self._revocations.close()
            self._leave_registry()
