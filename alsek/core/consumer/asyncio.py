"""``AsyncConsumer``: claims messages with an asyncio client and waits on Redis when idle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from alsek.core.backoff import Backoff, LinearBackoff
from alsek.core.broker import AsyncBroker, Claim
from alsek.core.consumer.base import BaseConsumer, SubsetType
from alsek.core.message import Message
from alsek.core.steps.drivers import async_run, async_stream
from alsek.defaults import DEFAULT_LEASE_TTL


class AsyncConsumer(BaseConsumer):
    """Claims messages from an ``AsyncBroker``; see ``BaseConsumer`` for the arguments."""

    broker: AsyncBroker

    def __init__(
        self,
        broker: AsyncBroker,
        subset: SubsetType = None,
        backoff: Backoff | None = LinearBackoff(
            1 * 1000, floor=1000, ceiling=30_000, zero_override=False
        ),
        *,
        lease_ttl: int = DEFAULT_LEASE_TTL,
        owner_id: str | None = None,
        task_names: Iterable[str] | None = None,
    ) -> None:
        super().__init__(
            subset, backoff, lease_ttl=lease_ttl, owner_id=owner_id, task_names=task_names
        )
        self.broker = broker

    async def claim(self, n: int = 1) -> Claim:
        """Lease up to ``n`` messages in one round trip (a retry after an outage is idempotent)."""
        return await async_run(self._claim_steps(n))

    async def _poll(self) -> list[Message]:
        return (await self.claim(1)).messages

    async def wait_for_work(self, next_due: int | None) -> None:
        """Wait until a submit wakes us, something is due, the backoff elapses, or a stop."""
        await async_run(self._wait_for_work_steps(next_due))

    async def pause_for_outage(self, error: Exception) -> None:
        """Wait before retrying after a Redis connection error (logged once per outage)."""
        await self.stop_signal.async_wait(self._outage.failed(error, self.lease_ttl) / 1000)

    def stream(self) -> AsyncIterator[Message]:
        """Yield claimed messages one at a time until a stop signal; survives Redis outages."""
        return async_stream(self._stream_steps())
