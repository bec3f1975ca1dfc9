"""``AsyncBaseWorkerPool``: the loop of asyncio pools, over the decisions of ``PoolCore``.

Same pass as the sync pools: reap, renew leases when due, claim only free slots, start, wait for
a slot or for work. Revocations arrive through pub/sub on an asyncio task of their own.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import Any

from alsek.core.consumer import AsyncConsumer
from alsek.core.future.outcome import (
    lost_plan,
    release_plan,
    run_plan_async,
    unknown_task_plan,
)
from alsek.core.message import Message
from alsek.core.steps.outage import REDIS_OUTAGE_ERRORS
from alsek.core.worker.core import DEFAULT_GRACE_PERIOD, Admission, PoolCore
from alsek.core.worker.helpers import filter_async_tasks
from alsek.exceptions import RevokedError, TerminationError
from alsek.types import SupportedMechanismType

log = logging.getLogger(__name__)


class AsyncBaseWorkerPool(PoolCore, AsyncConsumer, ABC):
    """An asyncio pool of futures fed by an async consumer (arguments as ``BaseWorkerPool``)."""

    def __init__(
        self,
        *,
        mechanism: SupportedMechanismType,
        tasks: list[Any] | tuple[Any, ...],
        queues: list[str] | None = None,
        task_specific_mode: bool = False,
        slot_wait_interval: int = 50,
        grace_period: int = DEFAULT_GRACE_PERIOD,
        **kwargs: Any,
    ) -> None:
        self._init_pool(
            AsyncConsumer.__init__,
            filter_async_tasks(tasks, mechanism),
            tasks,
            queues,
            task_specific_mode,
            slot_wait_interval,
            grace_period,
            **kwargs,
        )
        self._revocation_task: asyncio.Task[None] | None = None

    @abstractmethod
    def free_slots(self) -> int:
        """How many more messages can start now."""

    @abstractmethod
    async def submit_message(self, message: Message) -> bool:
        """Start a future for the message; ``False`` if it cannot start after all."""

    @abstractmethod
    async def prune(self) -> None:
        """Reap finished futures (calling ``_finished``) and stop timed-out ones."""

    @abstractmethod
    async def wait_for_slot(self, timeout_ms: int) -> None:
        """Wait until a future finishes, or ``timeout_ms``."""

    @abstractmethod
    async def stop_running(self, uuid: str, exception: type[BaseException]) -> None:
        """Stop the running message ``uuid``."""

    @abstractmethod
    async def stop_all(self, exception: type[BaseException]) -> None:
        """Stop every running future."""

    def on_boot(self) -> None:
        """Log what the pool serves and start listening for revocations."""
        for line in self._boot_lines(self.queues):
            log.info(line)
        self._revocation_task = asyncio.create_task(self._listen_for_revocations())
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
        while self._can_run and not self.stop_signal.received:
            try:
                await self._pass()
            except REDIS_OUTAGE_ERRORS as error:
                await self.pause_for_outage(error)

    async def _pass(self) -> None:
        await self.prune()
        await self._maintain()
        free = self.free_slots()
        if free <= 0:
            await self.wait_for_slot(min(self.slot_wait_interval, self._until_maintenance_ms()))
            return
        gather_ms = self._gather_wait_ms(free)
        if gather_ms:
            await self.wait_for_slot(gather_ms)
            return
        claim = await self.claim(free)
        self._note_claim(free, len(claim.messages))
        for message in claim.messages:
            await self._start(message)
        if not claim.messages:
            await self.wait_for_work(self._wake_by(claim.next_due))

    async def _start(self, message: Message) -> None:
        admission = self._admit(message)
        if admission is Admission.UNKNOWN_TASK:
            plan = unknown_task_plan(self.broker, message, self.tasks)
            await run_plan_async(plan)
        elif admission is Admission.EXHAUSTED:
            await run_plan_async(lost_plan(self._task_map[message.task_name], message))
        elif not await self.submit_message(message):
            self._finished(message.uuid)
            await run_plan_async(release_plan(self.broker, message))

    async def _maintain(self) -> None:
        messages, renew, check = self._maintenance_due()
        if renew:
            self._report_renewals(messages, await self.broker.renew(messages, self.lease_ttl))
        if check:
            for uuid in self._revoked_running(messages, await self.broker.revoked(messages)):
                await self._on_revoked(uuid)

    async def _on_revoked(self, uuid: str) -> None:
        stopping = self._notify_revoked(uuid, lambda u: self.stop_running(u, RevokedError))
        if stopping is not None:
            await stopping

    async def _listen_for_revocations(self) -> None:
        while True:
            pubsub = self.broker.backend.conn.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.broker.revocations_channel)
                while True:
                    notice = await pubsub.get_message(timeout=0.5)
                    if notice is not None:
                        await self._on_revoked(str(notice["data"]))
            except REDIS_OUTAGE_ERRORS:
                await asyncio.sleep(0.5)
            finally:
                await pubsub.aclose()

    async def on_shutdown(self) -> None:
        """Drain within the grace period, then stop and release what is left."""
        self._can_run = False
        try:
            deadline = self._grace_deadline()
            while self._draining(deadline):
                await self.prune()
                await self.wait_for_slot(min(self.slot_wait_interval, self.grace_period))
        finally:
            await self.stop_all(TerminationError)
            await self.prune()
            for message in self._inflight_messages():
                await run_plan_async(release_plan(self.broker, message), give_up_after_ms=2_000)
                self._finished(message.uuid)
            if self._revocation_task is not None:
                self._revocation_task.cancel()
            log.info("Async worker pool stopped")
