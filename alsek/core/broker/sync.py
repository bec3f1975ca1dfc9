"""``Broker``: the blocking shell over the broker operations defined in ``_base``."""

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
from alsek.core.steps.drivers import run
from alsek.core.steps.ops import Steps, T
from alsek.defaults import DEFAULT_TTL
from alsek.storage.backends.base import Backend


class Broker(BaseBroker):
    """Keeps messages in Redis and hands them out under leases; every operation is atomic.

    Args:
        backend: a sync Redis backend.
        dlq_ttl: how long (ms) failed messages stay in the dead-letter queue (``None``: none).
        wait_replicas: acknowledge a write that decides a message's fate (submit, ack,
            retry, fail, revoke, release, requeue) or leases it (a claim) only once this many
            replicas have it (Redis ``WAIT``, in the same round trip), so a failover right
            after cannot lose it, nor undo a lease and run the message twice. 0 (the default)
            waits for none. See ``docs/scaling.md`` for what it costs.
        wait_timeout_ms: the longest such a wait. A write that reached fewer replicas by then
            is not acknowledged: it raises ``ReplicationShortfallError``, a
            ``redis.ConnectionError`` that is waited out like an outage (a submit is re-sent
            for up to 10 s, a pool's ack, retry or fail for a lease, a consumer's claim until
            acknowledged, with the same request id, its messages handed out only then), the
            operation re-sent as is until the replicas have it. Redis cannot undo the write,
            so it may stand.
    """

    backend: Backend

    def __init__(
        self,
        backend: Backend,
        dlq_ttl: int | None = DEFAULT_TTL,
        wait_replicas: int = 0,
        wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS,
    ) -> None:
        if backend.IS_ASYNC:
            raise AttributeError("Broker needs a sync backend; use AsyncBroker for an async one")
        super().__init__(dlq_ttl, wait_replicas, wait_timeout_ms)
        self.backend = backend

    def _drive(self, steps: Steps[T]) -> T:
        """Run an operation with the blocking driver."""
        return run(steps, self.backend.conn)

    # -- serialization ---------------------------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """Settings that rebuild this broker in another process."""
        return self._settings()

    @classmethod
    def deserialize(cls, settings: dict[str, Any]) -> Broker:
        """Rebuild a broker (with a fresh connection pool) from ``serialize()``'s output."""
        return cls._rebuild(settings)

    # -- producing -------------------------------------------------------------------------

    def submit(
        self, message: Message, ttl: int = DEFAULT_TTL, effects: Sequence[Effect] = ()
    ) -> None:
        """Add a message to its queue, atomically, with ``effects`` in the same round trip.

        Raises:
            MessageAlreadyExistsError: a different message with this uuid exists; nothing written.
        """
        self._drive(self._submit_one_steps(message, ttl, effects))

    def submit_unique(
        self, message: Message, ttl: int = DEFAULT_TTL, effects: Sequence[Effect] = ()
    ) -> Message:
        """``submit`` a message that carries a ``UniqueEffect`` among ``effects``; returns it,
        or the message holding its unique key, which it yielded to (nothing written then).

        Raises:
            MessageAlreadyExistsError: as ``submit``.
        """
        return self._drive(self._submit_one_steps(message, ttl, effects))

    def submit_group(
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
        self._drive(self._submit_group_steps(messages, group_key, completion, ttl, effects))

    def submit_many(
        self,
        messages: Sequence[Message],
        ttl: int = DEFAULT_TTL,
        effects: Sequence[Sequence[Effect]] | None = None,
    ) -> None:
        """Submit many messages in pipelined, chunked round trips (``effects``: one per message).

        Raises:
            MessageAlreadyExistsError: naming uuids that already existed; all others are written.
        """
        self._drive(self._submit_many_steps(messages, ttl, effects))

    # -- consuming -------------------------------------------------------------------------

    def claim(
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
        return self._drive(self._claim_steps(sources, n, owner_id, lease, status, request_id))

    def renew(self, messages: Sequence[Message], lease_ttl: int | None = None) -> list[bool | None]:
        """Extend the leases of running messages in one round trip.

        Per message: ``True`` renewed, ``False`` lost (expired or taken over: it may run
        elsewhere), ``None`` gone (finished meanwhile).
        """
        return self._drive(self._renew_steps(messages, self._lease_ttl(lease_ttl)))

    def release(self, message: Message) -> None:
        """Give a leased message back at once, without counting an attempt."""
        self._drive(self._release_steps(message))

    def reclaim_expired(self, queues: Sequence[str] | None = None) -> int:
        """Return messages whose lease expired to their queues; how many were returned."""
        return self._drive(self._reclaim_steps(queues))

    def wait_for_work(
        self, queues: Sequence[str], timeout_ms: int, all_queues: bool = False
    ) -> bool:
        """Block until a submit signals one of ``queues`` (or a new queue), or the timeout."""
        return self._drive(self._wait_steps(queues, timeout_ms, all_queues))

    def wake(self, queues: Sequence[str]) -> None:
        """Wake a consumer waiting for work on each of ``queues`` (e.g. to see a stop at once)."""
        self._drive(self._wake_steps(queues))

    def queues(self) -> list[str]:
        """Names of the queues that have had messages (the registry), sorted."""
        return self._drive(self._queues_steps())

    # -- finishing -------------------------------------------------------------------------

    def ack(
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
        return self._drive(steps)

    def remove(self, message: Message) -> None:
        """Delete the message, its indexes and its lease."""
        self._drive(self._ack_steps(message, (), "remove"))

    def retry(
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
        self._drive(self._retry_steps(message, effects, delay, counted))

    def fail(
        self, message: Message, effects: Sequence[Effect] = (), follow_ups: Sequence[FollowUp] = ()
    ) -> None:
        """Remove the message and keep a dead-letter copy for ``dlq_ttl``; ``follow_ups`` (an
        ``on_failure`` handler) are submitted in the same round trip.

        Raises:
            LeaseLostError: the message carries a lease that is no longer held.
        """
        self._drive(self._fail_steps(message, effects, follow_ups))

    def revoke(self, message: Message, effects: Sequence[Effect] = ()) -> bool:
        """Flag, dead-letter and announce a revoked message (its worker is told via pub/sub).

        Returns ``False`` when the message is not in the broker (finished, failed, expired or
        never submitted): nothing is written then, and ``effects`` are not applied.
        """
        return self._drive(self._revoke_steps(message, effects))

    def is_revoked(self, message: Message) -> bool:
        """Whether the message was revoked."""
        return self._drive(self._exists_steps(keys.revoked_key(message.queue, message.uuid)))

    def revoked(self, messages: Sequence[Message]) -> list[bool]:
        """Which of ``messages`` were revoked, in one round trip (a worker's periodic check)."""
        return self._drive(self._revoked_steps(messages))

    # -- inspection ------------------------------------------------------------------------

    def exists(self, message: Message) -> bool:
        """Whether the message is in the broker (queued, delayed or leased)."""
        return self._drive(self._exists_steps(keys.message_key(message.queue, message.uuid)))

    def in_dlq(self, message: Message) -> bool:
        """Whether a dead-letter copy of the message exists."""
        return self._drive(self._exists_steps(keys.dlq_key(message.queue, message.uuid)))

    def sync_from_backend(self, message: Message) -> Message:
        """The stored version of the message (queue first, then DLQ); ``KeyError`` if neither."""
        return self._drive(self._sync_from_steps(message))

    def sync_to_backend(self, message: Message) -> None:
        """Overwrite the stored body (queue first, then DLQ); the caller must hold the lease."""
        self._drive(self._sync_to_steps(message))

    # -- dead-letter queue -----------------------------------------------------------------

    def dlq_count(self, queue: str | None = None) -> int:
        """How many dead-lettered messages ``queue`` (default: every queue) holds."""
        return self._drive(self._dlq_count_steps(queue))

    def dlq_list(self, queue: str | None = None, limit: int | None = None) -> list[DeadLetter]:
        """Dead-lettered messages, oldest expiry first."""
        return self._drive(self._dlq_list_steps(queue, limit))

    def requeue_from_dlq(
        self,
        message: Message,
        ttl: int = DEFAULT_TTL,
        effects: Sequence[Effect] = (),
        backoff_settings: dict[str, Any] | None = None,
    ) -> Message:
        """Put a dead-lettered message back in its queue with retries reset; returns it.

        ``effects`` ride along (a task's ``requeue_effects``: SUBMITTED, failure record
        cleared); ``backoff_settings`` replace the stored ones (the task's current backoff).
        """
        return self._drive(self._requeue_steps(message, ttl, effects, backoff_settings))

    def purge_dlq(self, queue: str | None = None) -> int:
        """Delete dead-lettered messages of ``queue`` (default: every queue); how many."""
        return self._drive(self._purge_dlq_steps(queue))
