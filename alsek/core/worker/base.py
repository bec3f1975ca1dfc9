"""The sync pools' bases: ``BaseWorkerPool`` for every sync pool, ``SlotWorkerPool`` for those
that claim for, and run, futures of their own (the loop of ``PoolLoop`` with blocking calls).

Revocations reach running messages through pub/sub at once (``revocations``); the loop's
periodic check backs that up.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any

from alsek.core.consumer import Consumer
from alsek.core.future.outcome import run_plan
from alsek.core.message import Message
from alsek.core.steps.drivers import run
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

    def run(self) -> None:
        """Boot, run until a stop signal, shut down gracefully."""
        self.on_boot()
        try:
            self.engine()
        except KeyboardInterrupt:
            log.info("Keyboard interrupt")
        finally:
            self.on_shutdown()


class SlotWorkerPool(PoolLoop, BaseWorkerPool):
    """A sync pool with slots of its own: it claims for its free slots and runs the messages
    as futures (in threads, processes or inline); see the subclasses for how.
    """

    _run_plan = staticmethod(run_plan)
    _revocations: RevocationListener | None = None  # listening once booted

    # -- the loop, with blocking calls ----------------------------------------------------------

    def on_boot(self) -> None:
        """Log what the pool serves and start listening for revocations."""
        for line in self._boot_lines():
            log.info(line)
        self._listen_for_revocations()
        log.info("Worker pool online")

    def _listen_for_revocations(self) -> None:
        self._revocations = RevocationListener(
            self.broker, self._queue_names, self._on_revoked
        ).start()

    def _on_revoked(self, uuid: str) -> None:
        run(self._stop_revoked_steps(uuid))

    def engine(self) -> None:
        """Claim and run messages until told to stop; Redis outages are waited out."""
        run(self._engine_steps())

    def _start(self, message: Message) -> None:
        run(self._start_steps(message))

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
