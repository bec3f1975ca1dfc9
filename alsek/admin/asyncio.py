"""``AsyncAdmin``: the asyncio shell over the operations of ``BaseAdmin``."""

from __future__ import annotations

from collections.abc import Sequence

from alsek.admin.base import BaseAdmin
from alsek.admin.types import MessageInfo, QueueStats, ThroughputPoint, WorkerInfo
from alsek.core.broker import AsyncBroker
from alsek.core.steps.drivers import async_run
from alsek.core.steps.ops import Steps, T


class AsyncAdmin(BaseAdmin):
    """The asyncio twin of ``Admin``: the same operations on an ``AsyncBroker``, awaitable.

    Args:
        broker: the async broker to operate on (its Redis, namespace and serializer).
    """

    broker: AsyncBroker

    def __init__(self, broker: AsyncBroker) -> None:
        super().__init__(broker)

    async def _run(self, steps: Steps[T]) -> T:
        return await async_run(steps, self.broker.backend.conn)

    async def queues(self) -> list[QueueStats]:
        """See ``Admin.queues``."""
        return await self._run(self._queues_steps())

    async def workers(self) -> list[WorkerInfo]:
        """See ``Admin.workers``."""
        return await self._run(self._workers_steps())

    async def message(self, uuid: str) -> MessageInfo | None:
        """See ``Admin.message``."""
        return await self._run(self._message_steps(uuid))

    async def messages(
        self,
        queue: str,
        state: str = "ready",
        task: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[MessageInfo]:
        """See ``Admin.messages``."""
        return await self._run(self._messages_steps(queue, state, task, offset, limit))

    async def pause(self, queue: str) -> None:
        """See ``Admin.pause``."""
        await self._run(self._pause_steps(queue))

    async def resume(self, queue: str) -> bool:
        """See ``Admin.resume``."""
        return await self._run(self._resume_steps(queue))

    async def purge(self, queue: str, state: str = "ready") -> int:
        """See ``Admin.purge``."""
        return await self._run(self._purge_steps(queue, state))

    async def revoke(self, uuid: str) -> bool:
        """See ``Admin.revoke``."""
        return await self._run(self._revoke_steps(uuid))

    async def run_now(self, uuid: str) -> bool:
        """See ``Admin.run_now``."""
        return await self._run(self._run_now_steps(uuid))

    async def dead(
        self, queue: str | None = None, task: str | None = None, limit: int | None = 100
    ) -> list[MessageInfo]:
        """See ``Admin.dead``."""
        return await self._run(self._dead_list_steps(queue, task, limit))

    async def requeue_dead(
        self,
        queue: str | None = None,
        task: str | None = None,
        uuids: Sequence[str] | None = None,
    ) -> int:
        """See ``Admin.requeue_dead``."""
        return await self._run(self._requeue_dead_steps(queue, task, uuids))

    async def purge_dead(
        self,
        queue: str | None = None,
        task: str | None = None,
        uuids: Sequence[str] | None = None,
    ) -> int:
        """See ``Admin.purge_dead``."""
        return await self._run(self._purge_dead_steps(queue, task, uuids))

    async def throughput(
        self,
        queue: str | None = None,
        task: str | None = None,
        since_ms: int | None = None,
        step: str = "minute",
    ) -> list[ThroughputPoint]:
        """See ``Admin.throughput``."""
        return await self._run(self._throughput_steps(queue, task, since_ms, step))
