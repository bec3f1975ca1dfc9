"""``AsyncConsumer``: claims messages with an asyncio client and waits on Redis when idle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from alsek.core.backoff import Backoff, LinearBackoff
from alsek.core.broker import AsyncBroker, Claim
from alsek.core.consumer.base import MAX_BLOCK_MS, BaseConsumer, SubsetType
from alsek.core.consumer.sync import REDIS_OUTAGE_ERRORS
from alsek.core.message import Message
from alsek.defaults import DEFAULT_LEASE_TTL
from alsek.utils.temporal import utcnow_timestamp_ms


class AsyncConsumer(BaseConsumer):
    """Claims messages from an ``AsyncBroker``; see ``BaseConsumer`` for the arguments."""

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
        exclude_tasks: Iterable[str] = (),
    ) -> None:
        super().__init__(
            subset, backoff, lease_ttl=lease_ttl, owner_id=owner_id, exclude_tasks=exclude_tasks
        )
        self.broker = broker

    async def claim(self, n: int = 1) -> Claim:
        """Lease up to ``n`` messages in one round trip (a retry after an outage is idempotent)."""
        if self._registry_stale():
            self._set_registry(await self.broker.queues())
        sources = self._sources()
        if not sources:
            return Claim([], None, 0)
        claim = await self.broker.claim(
            sources,
            n,
            owner_id=self.owner_id,
            lease_ttl=self.lease_ttl,
            status=self.claim_status,
            request_id=self._next_request_id(),
        )
        self._claimed(claim.messages)
        return claim

    async def _poll(self) -> list[Message]:
        return (await self.claim(1)).messages

    async def wait_for_work(self, next_due: int | None) -> None:
        """Wait until a submit wakes us, something is due, the backoff elapses, or a stop."""
        deadline = utcnow_timestamp_ms() + self._idle_timeout_ms(next_due)
        while not self.stop_signal.received:
            remaining = deadline - utcnow_timestamp_ms()
            if remaining <= 0:
                return
            woken = await self.broker.wait_for_work(
                self._queue_names(), min(remaining, MAX_BLOCK_MS), all_queues=self.all_queues
            )
            if woken:
                self._woken()
                return

    async def pause_for_outage(self, error: Exception) -> None:
        """Wait before retrying after a Redis connection error (logged once per outage)."""
        await self.stop_signal.async_wait(self._outage.failed(error) / 1000)

    async def stream(self) -> AsyncIterator[Message]:
        """Yield claimed messages one at a time until a stop signal; survives Redis outages."""
        while not self.stop_signal.received:
            try:
                claim = await self.claim(1)
                if claim.messages:
                    for message in claim.messages:
                        yield message
                    continue
                await self.wait_for_work(claim.next_due)
            except REDIS_OUTAGE_ERRORS as error:
                await self.pause_for_outage(error)
