"""What ``Broker`` and ``AsyncBroker`` share: every decision that is not I/O.

Each operation is written once, as *steps* (``alsek.core.steps``): a generator that yields the
round trips it needs and receives their replies, until it returns its result. ``Broker`` drives
them with the blocking driver, ``AsyncBroker`` with the asyncio one; neither holds any logic of
its own. Submitting lives in ``submit``, the dead-letter queue in ``dlq``, names and bodies in
``calls``, and the meaning of every script reply in ``replies``; this module holds the
interface, claims and leases, finishing a message, and reading.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, TypeVar

from alsek.core.broker import keys
from alsek.core.broker.calls import counted_run_ms, failure_reason, lease_owner
from alsek.core.broker.claims import Claim, ClaimSource, ClaimSteps
from alsek.core.broker.dlq import DeadLetter, DeadLetterSteps
from alsek.core.broker.effects import Effect, encode_effects
from alsek.core.broker.groups import GroupFollowUp, GroupSteps
from alsek.core.broker.replies import ALREADY, OK, WANT, check_reply
from alsek.core.broker.submit import FollowUp
from alsek.core.message import Message
from alsek.core.middleware import Middleware, MiddlewareStack
from alsek.core.steps.ops import Steps, batched, call
from alsek.defaults import DEFAULT_LEASE_TTL, DEFAULT_TTL
from alsek.storage.backends.helpers import rebuild_backend
from alsek.utils.aggregation import gather_init_params
from alsek.utils.temporal import utcnow_timestamp_ms

__all__ = ["BaseBroker", "Claim", "ClaimSource", "DeadLetter", "FollowUp", "GroupFollowUp"]

log = logging.getLogger(__name__)

BrokerT = TypeVar("BrokerT", bound="BaseBroker")


#: Default longest wait of a durable write for its replicas (ms).
DEFAULT_WAIT_TIMEOUT_MS = 1000


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class BaseBroker(GroupSteps, DeadLetterSteps, ClaimSteps, ABC):
    """Common ground of the sync and async brokers.

    Args:
        dlq_ttl: how long (ms) failed messages are kept in the dead-letter queue; ``None`` or 0
            keeps no copy.
    """

    def __init__(
        self,
        dlq_ttl: int | None = None,
        wait_replicas: int = 0,
        wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS,
    ) -> None:
        self.dlq_ttl = dlq_ttl
        self.wait_replicas = _check_count("wait_replicas", wait_replicas, minimum=0)
        self.wait_timeout_ms = _check_count("wait_timeout_ms", wait_timeout_ms, minimum=1)
        self._registered: dict[str, float] = {}
        self._one_queue_per_call: bool | None = None
        self._passed_over: dict[tuple[str, str], str] = {}
        self._middleware = MiddlewareStack()

    # -- middleware ------------------------------------------------------------------------

    def add_middleware(self, middleware: Middleware) -> None:
        """Run ``middleware``'s hooks for every message of this broker, after those of the
        middleware added before it (see ``alsek.core.middleware``). It travels with the broker
        to worker processes.

        Raises:
            TypeError: not a ``Middleware`` instance, or one with ``async def`` hooks added to a
                sync ``Broker``.
        """
        self._middleware.add(middleware, allow_async=bool(self.backend.IS_ASYNC))

    @property
    def middleware(self) -> tuple[Middleware, ...]:
        """The middleware added, in order."""
        return tuple(self._middleware)

    def __repr__(self) -> str:
        durable = (
            f", wait_replicas={self.wait_replicas}, wait_timeout_ms={self.wait_timeout_ms}"
            if self.wait_replicas
            else ""
        )
        return f"{type(self).__name__}(backend={self.backend!r}, dlq_ttl={self.dlq_ttl!r}{durable})"

    # -- interface (spec) ------------------------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """Settings that rebuild this broker in another process."""
        raise NotImplementedError()

    def _settings(self) -> dict[str, Any]:
        """What ``serialize`` returns: the init parameters, the backend as class and bytes,
        and the middleware (when there is some)."""
        settings = gather_init_params(self, ignore=("backend",))
        settings["backend"] = {"cls": type(self.backend), "encoding": self.backend.encode()}
        if len(self._middleware):
            settings["middleware"] = list(self._middleware)
        return settings

    @classmethod
    def _rebuild(cls: type[BrokerT], settings: dict[str, Any]) -> BrokerT:
        """A broker from ``serialize()``'s output, with a new connection pool."""
        kwargs = dict(settings)
        middleware = kwargs.pop("middleware", ())
        kwargs["backend"] = rebuild_backend(kwargs["backend"]["encoding"])
        broker = cls(**kwargs)
        for item in middleware:
            broker.add_middleware(item)
        return broker

    @staticmethod
    @abstractmethod
    def deserialize(settings: dict[str, Any]) -> BaseBroker:
        """Rebuild a broker from ``serialize()``'s output."""

    @abstractmethod
    def exists(self, message: Message) -> bool | Any:
        """Whether the message is in the broker (queued, delayed or leased)."""

    @abstractmethod
    def submit(self, message: Message, ttl: int = DEFAULT_TTL) -> Any | None:
        """Add a message to its queue."""

    @abstractmethod
    def submit_unique(self, message: Message) -> Message | Any:
        """Submit a message holding a unique key; returns the message that stands."""

    @abstractmethod
    def retry(self, message: Message) -> Any | None:
        """Give the message back for another attempt after its backoff."""

    @abstractmethod
    def remove(self, message: Message) -> Any | None:
        """Delete the message from the broker."""

    @abstractmethod
    def ack(self, message: Message) -> Any | None:
        """Acknowledge a message: it is done and never redelivered."""

    @abstractmethod
    def fail(self, message: Message) -> Any | None:
        """Give up on a message: remove it and keep a dead-letter copy."""

    @abstractmethod
    def release(self, message: Message) -> Any | None:
        """Give a leased message back at once, without counting an attempt."""

    @abstractmethod
    def in_dlq(self, message: Message) -> bool | Any:
        """Whether a dead-letter copy of the message exists."""

    @abstractmethod
    def sync_from_backend(self, message: Message) -> Message | Any:
        """Read the stored version of the message (queue first, then DLQ)."""

    @abstractmethod
    def sync_to_backend(self, message: Message) -> Any | None:
        """Overwrite the stored version of the message (queue first, then DLQ)."""

    # -- claim and leases ------------------------------------------------------------------

    def _renew_steps(self, messages: Sequence[Message], lease_ttl: int) -> Steps[list[bool | None]]:
        """One script call per Cluster slot (one in all on a single server), one round trip."""
        if not messages:
            return []
        groups = self._slot_groups([message.queue for message in messages])
        calls = []
        for group in groups:
            args: list[str | int | float] = [lease_ttl, len(group)]
            declared: list[str] = []
            for index in group:
                message = messages[index]
                args += [message.queue, message.uuid, lease_owner(message)]
                declared += [self._full(name) for name in keys.queue_keys(message.queue)]
                declared += self._message_keys(message.queue, message.uuid, None)
            queue = messages[group[0]].queue
            calls.append(self._script("renew", queue, *args, declared=declared))
        replies = yield batched(*calls)
        flags: list[bool | None] = [None] * len(messages)
        for group, reply in zip(groups, replies):
            for index, flag in zip(group, reply):
                flags[index] = None if flag < 0 else bool(flag)
        return flags

    def _release_steps(self, message: Message) -> Steps[None]:
        owner = lease_owner(message)
        if not owner:
            raise AttributeError(f"{message.summary} carries no lease to release")
        request = self._message_script("release", message, message.uuid, owner)
        [reply] = yield self._write(request)
        check_reply(reply, message, "release")
        message.linked_lock = None

    # -- finishing a message ---------------------------------------------------------------

    def _ack_steps(
        self,
        message: Message,
        effects: Sequence[Effect],
        operation: str,
        follow_ups: Sequence[FollowUp | GroupFollowUp] = (),
    ) -> Steps[bool]:
        """Ack (or remove); ``follow_ups`` (a callback, handlers) are submitted in the same
        round trip.

        Returns ``True`` when this call, or an earlier attempt of it whose reply was lost,
        acked the message (its effects were applied once); ``False`` when the message was
        already gone (a revocation, or someone else finishing it): effects did not apply.
        The next messages go first, under request ids derived from their uuids: a repeat of
        this ack, or a later run of this message, submits them again as a no-op.
        """
        calls, positions = self._follow_up_calls(follow_ups)
        effects, after = self._retaining(message, effects)
        # An ack ends an attempt (counted in the throughput history); a remove does not.
        counted = (message.task_name, counted_run_ms(message)) if operation == "ack" else ("", "")
        calls.append(
            self._message_script(
                "ack",
                message,
                message.uuid,
                lease_owner(message),
                *counted,
                *encode_effects(effects),
                effects=effects,
                counted=operation == "ack",
            )
        )
        replies = yield self._write(*calls)
        if after and replies[-1] in (OK, ALREADY):  # a repeat's first may have missed them
            yield batched(*after)
        sent = yield from self._follow_ups_again_steps(
            follow_ups, [replies[at] for at in positions]
        )
        _log_unsubmitted(follow_ups, sent)
        code = check_reply(replies[-1], message, operation, gone_ok=True)
        message.linked_lock = None
        return code in (OK, ALREADY)

    def _retry_steps(
        self,
        message: Message,
        effects: Sequence[Effect],
        delay: int | None = None,
        counted: bool = True,
    ) -> Steps[None]:
        """Requeue at now + ``delay`` (default: the backoff of the next attempt); an attempt
        that is not ``counted`` keeps ``retries`` as it is (a rate-limited run)."""
        updated = message.clone()
        updated.increment_retries()
        wait = updated.get_backoff_duration() if delay is None else delay
        if not counted:
            updated.update(retries=message.retries)
        updated.update(ready_at=utcnow_timestamp_ms() + wait, linked_lock=None)
        request = self._message_script(
            "retry",
            message,
            message.uuid,
            lease_owner(message),
            self._encode_body(updated),
            updated.ready_at,
            counted_run_ms(message),
            *encode_effects(effects),
            effects=effects,
            counted=True,
        )
        [reply] = yield self._write(request)
        check_reply(reply, message, "retry")
        message.update(
            retries=updated.retries,
            updated_at=updated.updated_at,
            ready_at=updated.ready_at,
            linked_lock=None,
        )
        log.info("Retrying %s in %s ms", message.summary, wait)

    def _fail_steps(
        self, message: Message, effects: Sequence[Effect], follow_ups: Sequence[FollowUp] = ()
    ) -> Steps[None]:
        """Dead-letter the message; ``follow_ups`` (an ``on_failure`` handler) are submitted in
        the same round trip, first, as no-ops when repeated (see ``_ack_steps``)."""
        calls, positions = self._follow_up_calls(follow_ups)
        effects, after = self._retaining(message, effects, self.dlq_ttl or 0)
        request = self._fail_call(
            message.queue,
            message.uuid,
            message.task_name,
            lease_owner(message),
            self._encode_body(message),
            failure_reason(message),
            effects,
            counted_run_ms(message),
            self._held_keys(message),
        )
        replies = yield self._write(*calls, request)
        reply = replies[-1]
        sent = yield from self._follow_ups_again_steps(
            follow_ups, [replies[at] for at in positions]
        )
        _log_unsubmitted(follow_ups, sent)
        if after and reply in (OK, ALREADY):
            yield batched(*after)
        check_reply(reply, message, "fail", gone_ok=True)
        message.linked_lock = None

    def _revoke_steps(self, message: Message, effects: Sequence[Effect]) -> Steps[bool]:
        """Revoke a message that is in the broker; ``False`` (nothing written, no effect
        applied) when it is gone: finished, failed, expired or never submitted."""
        effects, after = self._retaining(message, effects, self.dlq_ttl or 0)
        request = self._message_script(
            "revoke",
            message,
            message.uuid,
            DEFAULT_TTL,
            self._encode_body(message),
            failure_reason(message),
            self.dlq_ttl or 0,
            self.revocation_channel(message.queue),
            *encode_effects(effects),
            effects=effects,
        )
        [reply] = yield self._write(request)
        message.linked_lock = None
        revoked = check_reply(reply, message, "revoke", gone_ok=True) == OK
        if revoked and after:
            yield batched(*after)
        if revoked:
            yield from self._middleware_steps("after_revoke", [message])
        return revoked

    def _follow_ups_again_steps(
        self, follow_ups: Sequence[FollowUp | GroupFollowUp], replies: Sequence[Any]
    ) -> Steps[list[Any]]:
        """The follow-ups' submit replies, after sending again those that answered ``WANT``
        (a unique key held by a message whose keys they could not name)."""
        sent = list(replies)
        for index, (member, reply) in enumerate(zip(_members(follow_ups), replies)):
            if reply[0] == WANT:
                again = self._next_message_again_steps(member.message, member.effects, reply[2:])
                sent[index] = yield from again
        return sent

    # -- reading ---------------------------------------------------------------------------

    def _exists_steps(self, short_name: str) -> Steps[bool]:
        [count] = yield batched(("EXISTS", self._full(short_name)))
        return bool(count)

    def _revoked_steps(self, messages: Sequence[Message]) -> Steps[list[bool]]:
        if not messages:
            return []
        replies = yield batched(
            *(("EXISTS", self._full(keys.revoked_key(m.queue, m.uuid))) for m in messages)
        )
        return [bool(reply) for reply in replies]

    def _sync_from_steps(self, message: Message) -> Steps[Message]:
        replies = yield batched(
            ("HGET", self._full(keys.message_key(message.queue, message.uuid)), "data"),
            ("HGET", self._full(keys.dlq_key(message.queue, message.uuid)), "data"),
        )
        raw = replies[0] if replies[0] is not None else replies[1]
        if raw is None:
            raise KeyError(f"{message.summary} is neither in its queue nor in the DLQ")
        return self._decode_body(raw)

    def _sync_to_steps(self, message: Message) -> Steps[None]:
        request = self._message_script(
            "sync_to",
            message,
            message.uuid,
            lease_owner(message),
            message.task_name,
            message.priority,
            self._encode_body(message),
        )
        [reply] = yield batched(request)
        check_reply(reply, message, "sync")

    # -- waiting for work ------------------------------------------------------------------

    def _wait_steps(self, queues: Sequence[str], timeout_ms: int, all_queues: bool) -> Steps[bool]:
        names = [self._full(keys.wake_key(queue)) for queue in queues]
        if all_queues:
            names.append(self._full(keys.QUEUE_REGISTRY_WAKE))
        if self.one_queue_per_call:
            # BLPOP on keys of several slots is refused on a Cluster: block on the first queue;
            # the others are claimed from at least every MAX_BLOCK_MS anyway.
            names = names[:1]
        if not names:
            raise ValueError("wait_for_work needs at least one queue (or all_queues=True)")
        # At least 2 ms: Redis 6.2 truncates the timeout to whole ms, and 0.001 s becomes 0,
        # which means "block forever" (until the client's socket timeout fails the call).
        timeout = max(timeout_ms, 2) / 1000
        [popped] = yield call(("BLPOP", *names, timeout))  # blocking: never batched
        return popped is not None

    def _wake_steps(self, queues: Sequence[str]) -> Steps[None]:
        """Wake a consumer blocked in ``wait_for_work`` on each of ``queues``, as a submit does.

        At most one token waits in a list (a token already there means nobody is blocked), and
        it expires like a submit's.
        """
        commands: list[tuple[Any, ...]] = []
        for queue in queues:
            key = self._full(keys.wake_key(queue))
            ttl = keys.WAKE_TTL_MS
            commands += [("LPUSH", key, "1"), ("LTRIM", key, 0, 0), ("PEXPIRE", key, ttl)]
        if commands:
            yield call(*commands)

    @staticmethod
    def _lease_ttl(lease_ttl: int | None) -> int:
        return DEFAULT_LEASE_TTL if lease_ttl is None else lease_ttl


def _members(follow_ups: Sequence[FollowUp | GroupFollowUp]) -> list[FollowUp]:
    """Every message of ``follow_ups``, a group's members in order."""
    return [
        member
        for follow_up in follow_ups
        for member in (follow_up.members if isinstance(follow_up, GroupFollowUp) else [follow_up])
    ]


def _log_unsubmitted(
    follow_ups: Sequence[FollowUp | GroupFollowUp], replies: Sequence[Any]
) -> None:
    messages = [member.message for member in _members(follow_ups)]
    for message, reply in zip(messages, replies):
        if reply[0] != OK:
            log.info(
                "Next message %s was not submitted (%s): a message with its uuid was already "
                "submitted with another body, or revoked",
                message.uuid,
                reply[0],
            )
