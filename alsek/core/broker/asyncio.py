"""``AsyncBroker``: the asyncio shell over the broker operations defined in ``_base``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alsek.core.broker import keys
from alsek.core.broker._base import (
    DEFAULT_WAIT_TIMEOUT_MS,
    BaseBroker,
    Claim,
    ClaimSource,
    DeadLetter,
    FollowUp,
    GroupFollowUp,
)
from alsek.core.broker.effects import ClaimStatus, Effect
from alsek.core.message import Message
from alsek.core.steps.drivers import async_run
from alsek.core.steps.ops import Steps, T
from alsek.defaults import DEFAULT_TTL
from alsek.storage.backends.base import AsyncBackend


class AsyncBroker(BaseBroker):
    """The asyncio twin of ``Broker``: same operations, awaitable.

    Args:
        backend: an async Redis backend.
        dlq_ttl: how long (ms) failed messages stay in the dead-letter queue (``None``: none).
        wait_replicas: replicas every fate-deciding write, and every claim, waits for before
            it is acknowledged (see ``Broker``).
        wait_timeout_ms: the longest such a wait; a write that reached fewer replicas raises
            ``ReplicationShortfallError``, waited out like an outage (see ``Broker``).
    """

    backend: AsyncBackend

    def __init__(
        self,
        backend: AsyncBackend,
        dlq_ttl: int | None = DEFAULT_TTL,
        wait_replicas: int = 0,
        wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS,
    ) -> None:
        if not backend.IS_ASYNC:
            raise AssertionError("Async broker requires an asynchronous backend")
        super().__init__(dlq_ttl, wait_replicas, wait_timeout_ms)
        self.backend = backend

    async def _drive(self, steps: Steps[T]) -> T:
        """Run an operation with the asyncio driver."""
        return await async_run(steps, self.backend.conn)

    # -- serialization ---------------------------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """Settings that rebuild this broker in another process."""
        return self._settings()

    @classmethod
    def deserialize(cls, settings: dict[str, Any]) -> AsyncBroker:
        """Rebuild a broker (with a fresh connection pool) from ``serialize()``'s output."""
        return cls._rebuild(settings)

    # -- producing -------------------------------------------------------------------------

    async def submit(
        self, message: Message, ttl: int = DEFAULT_TTL, effects: Sequence[Effect] = ()
    ) -> None:
        """Add a message to its queue, atomically, with ``effects`` in the same round trip.

        Raises:
            MessageAlreadyExistsError: a different message with this uuid exists; nothing written.
        """
        await self._drive(self._submit_one_steps(message, ttl, effects))

    async def submit_unique(
        self, message: Message, ttl: int = DEFAULT_TTL, effects: Sequence[Effect] = ()
    ) -> Message:
        """``submit`` a message that carries a ``UniqueEffect`` among ``effects``; returns it,
        or the message holding its unique key, which it yielded to (nothing written then).

        Raises:
            MessageAlreadyExistsError: as ``submit``.
        """
        return await self._drive(self._submit_one_steps(message, ttl, effects))

    async def submit_group(
        self,
        messages: Sequence[Message],
        group_key: str,
        completion: Message | None = None,
        ttl: int = DEFAULT_TTL,
        effects: Sequence[Sequence[Effect]] | None = None,
    ) -> None:
        """Submit a group's ``messages`` in one round trip with the record counting them at
        ``group_key`` (``group_key(queue, group_id)``); ``completion`` is submitted by the ack
        of the last member to succeed (see ``groups``). Each message must carry the key.

        Raises:
            ValueError: no messages; on Redis Cluster, messages or callback in several queues.
            MessageAlreadyExistsError: as ``submit_many``.
        """
        await self._drive(self._submit_group_steps(messages, group_key, completion, ttl, effects))

    async def submit_many(
        self,
        messages: Sequence[Message],
        ttl: int = DEFAULT_TTL,
        effects: Sequence[Sequence[Effect]] | None = None,
    ) -> None:
        """Submit many messages in pipelined, chunked round trips (``effects``: one per message).

        Raises:
            MessageAlreadyExistsError: naming uuids that already existed; all others are written.
        """
        await self._drive(self._submit_many_steps(messages, ttl, effects))

    # -- consuming -------------------------------------------------------------------------

    async def claim(
        self,
        sources: Sequence[ClaimSource],
        n: int,
        owner_id: str,
        lease_ttl: int | None = None,
        status: ClaimStatus | None = None,
        request_id: str | None = None,
    ) -> Claim:
        """Lease up to ``n`` ready messages from ``sources``, best first, in one round trip."""
        lease = self._lease_ttl(lease_ttl)
        return await self._drive(self._claim_steps(sources, n, owner_id, lease, status, request_id))

    async def renew(
        self, messages: Sequence[Message], lease_ttl: int | None = None
    ) -> list[bool | None]:
        """Extend the leases of running messages in one round trip.

        Per message: ``True`` renewed, ``False`` lost (expired or taken over: it may run
        elsewhere), ``None`` gone (finished meanwhile).
        """
        return await self._drive(self._renew_steps(messages, self._lease_ttl(lease_ttl)))

    async def release(self, message: Message) -> None:
        """Give a leased message back at once, without counting an attempt."""
        await self._drive(self._release_steps(message))

    async def reclaim_expired(self, queues: Sequence[str] | None = None) -> int:
        """Return messages whose lease expired to their queues; how many were returned."""
        return await self._drive(self._reclaim_steps(queues))

    async def wait_for_work(
        self, queues: Sequence[str], timeout_ms: int, all_queues: bool = False
    ) -> bool:
        """Block until a submit signals one of ``queues`` (or a new queue), or the timeout."""
        return await self._drive(self._wait_steps(queues, timeout_ms, all_queues))

    async def wake(self, queues: Sequence[str]) -> None:
        """Wake a consumer waiting for work on each of ``queues`` (e.g. to see a stop at once)."""
        await self._drive(self._wake_steps(queues))

    async def queues(self) -> list[str]:
        """Names of the queues that have had messages (the registry), sorted."""
        return await self._drive(self._queues_steps())

    # -- finishing -------------------------------------------------------------------------

    async def ack(
        self,
        message: Message,
        effects: Sequence[Effect] = (),
        then_submit: Message | None = None,
        then_submit_effects: Sequence[Effect] = (),
        follow_ups: Sequence[FollowUp | GroupFollowUp] = (),
    ) -> bool:
        """Acknowledge a message, with ``effects`` and an optional next message (a callback)
        submitted in the same round trip, as are ``follow_ups`` (e.g. handlers).

        Returns ``False`` when the message was already gone (nothing applied).

        Raises:
            LeaseLostError: the message carries a lease that is no longer held.
        """
        if then_submit is not None:
            follow_ups = [FollowUp(then_submit, then_submit_effects), *follow_ups]
        steps = self._ack_steps(message, effects, "ack", follow_ups)
        return await self._drive(steps)

    async def remove(self, message: Message) -> None:
        """Delete the message, its indexes and its lease."""
        await self._drive(self._ack_steps(message, (), "remove"))

    async def retry(
        self,
        message: Message,
        effects: Sequence[Effect] = (),
        delay: int | None = None,
        counted: bool = True,
    ) -> None:
        """Requeue for another attempt at now + backoff; ``message`` is updated in place.

        ``delay``: ms to wait instead of the backoff. ``counted=False`` keeps ``retries`` as
        it is (the attempt does not count against ``max_retries``).

        Raises:
            MessageDoesNotExistsError: the message is gone.
            LeaseLostError: the message carries a lease that is no longer held.
        """
        await self._drive(self._retry_steps(message, effects, delay, counted))

    async def fail(
        self, message: Message, effects: Sequence[Effect] = (), follow_ups: Sequence[FollowUp] = ()
    ) -> None:
        """Remove the message and keep a dead-letter copy for ``dlq_ttl``; ``follow_ups`` (an
        ``on_failure`` handler) are submitted in the same round trip.

        Raises:
            LeaseLostError: the message carries a lease that is no longer held.
        """
        await self._drive(self._fail_steps(message, effects, follow_ups))

    async def revoke(self, message: Message, effects: Sequence[Effect] = ()) -> bool:
        """Flag, dead-letter and announce a revoked message (its worker is told via pub/sub).

        Returns ``False`` when the message is not in the broker (finished, failed, expired or
        never submitted): nothing is written then, and ``effects`` are not applied.
        """
        return await self._drive(self._revoke_steps(message, effects))

    async def is_revoked(self, message: Message) -> bool:
        """Whether the message was revoked."""
        return await self._drive(self._exists_steps(keys.revoked_key(message.queue, message.uuid)))

    async def revoked(self, messages: Sequence[Message]) -> list[bool]:
        """Which of ``messages`` were revoked, in one round trip (a worker's periodic check)."""
        return await self._drive(self._revoked_steps(messages))

    # -- inspection ------------------------------------------------------------------------

    async def exists(self, message: Message) -> bool:
        """Whether the message is in the broker (queued, delayed or leased)."""
        return await self._drive(self._exists_steps(keys.message_key(message.queue, message.uuid)))

    async def in_dlq(self, message: Message) -> bool:
        """Whether a dead-letter copy of the message exists."""
        return await self._drive(self._exists_steps(keys.dlq_key(message.queue, message.uuid)))

    async def sync_from_backend(self, message: Message) -> Message:
        """The stored version of the message (queue first, then DLQ); ``KeyError`` if neither."""
        return await self._drive(self._sync_from_steps(message))

    async def sync_to_backend(self, message: Message) -> None:
        """Overwrite the stored body (queue first, then DLQ); the caller must hold the lease."""
        await self._drive(self._sync_to_steps(message))

    # -- dead-letter queue -----------------------------------------------------------------

    async def dlq_count(self, queue: str | None = None) -> int:
        """How many dead-lettered messages ``queue`` (default: every queue) holds."""
        return await self._drive(self._dlq_count_steps(queue))

    async def dlq_list(
        self, queue: str | None = None, limit: int | None = None
    ) -> list[DeadLetter]:
        """Dead-lettered messages, oldest expiry first."""
        return await self._drive(self._dlq_list_steps(queue, limit))

    async def requeue_from_dlq(
        self,
        message: Message,
        ttl: int = DEFAULT_TTL,
        effects: Sequence[Effect] = (),
        backoff_settings: dict[str, Any] | None = None,
    ) -> Message:
        """See ``Broker.requeue_from_dlq``."""
        return await self._drive(self._requeue_steps(message, ttl, effects, backoff_settings))

    async def purge_dlq(self, queue: str | None = None) -> int:
        """Delete dead-lettered messages of ``queue`` (default: every queue); how many."""
        return await self._drive(self._purge_dlq_steps(queue))
