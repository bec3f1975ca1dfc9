"""What ``Broker`` and ``AsyncBroker`` share: every decision that is not I/O.

Each operation is written once, here, as a generator of *steps*: it yields the Redis calls it
needs (run together in one round trip) and receives their replies, until it returns its result.
``Broker`` drives these generators with a blocking client, ``AsyncBroker`` with an asyncio one;
neither holds any logic of its own.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from alsek.core.broker import keys
from alsek.core.broker.effects import (
    ClaimStatus,
    Effect,
    encode_claim_status,
    encode_effects,
)
from alsek.core.broker.runner import Call, CommandCall, ScriptCall
from alsek.core.message import Message
from alsek.defaults import DEFAULT_LEASE_TTL, DEFAULT_TTL
from alsek.exceptions import (
    LeaseLostError,
    MessageAlreadyExistsError,
    MessageDoesNotExistsError,
    WorkerLostError,
)
from alsek.utils.parsing import ExceptionDetails, get_exception_name
from alsek.utils.temporal import utcnow_timestamp_ms

log = logging.getLogger(__name__)

T = TypeVar("T")
#: An operation: yields batches of calls (one round trip each), receives their replies.
Steps = Generator[list[Call], list[Any], T]

#: Messages per submit script call: big enough to amortise the round trip, small enough to keep
#: each call short (Redis runs one script at a time).
SUBMIT_CHUNK_SIZE = 500
#: Redis scores are doubles: integers above this lose precision, and with it ordering.
MAX_PRIORITY = 2**53 - 1
#: How often a broker re-registers a queue it submits to (which refreshes the registry's TTL).
REGISTRY_REFRESH_SECONDS = 600.0


@dataclass(frozen=True)
class ClaimSource:
    """Where a claim looks: a queue, and optionally which of its tasks, drained in this order.

    Without ``tasks``, every task of the queue but those in ``exclude`` (served by other
    pools), best priority first.
    """

    queue: str
    tasks: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()


class DeadLetter(NamedTuple):
    """A dead-lettered message; ``message`` is ``None`` when its body could not be decoded."""

    queue: str
    uuid: str
    message: Message | None
    reason: str
    failed_at: int
    raw: str


class Claim(NamedTuple):
    """What one claim returned.

    ``messages`` are leased to the caller. ``next_due`` is the earliest time (ms) at which a
    delayed message becomes ready or a lease expires in the queues looked at (``None``: nothing
    pending). ``rejected`` counts bodies that could not be decoded and went to the DLQ.
    """

    messages: list[Message]
    next_due: int | None
    rejected: int


class _Prepared(NamedTuple):
    """A message checked and encoded for submission."""

    message: Message
    body: str
    ready_at: int


def lease_owner(message: Message) -> str:
    """Owner id of the lease the message carries, or ``""`` when it carries none."""
    lock = message.linked_lock
    return lock["owner_id"] if lock else ""


def _worker_lost_details() -> dict[str, Any]:
    return ExceptionDetails(
        name=get_exception_name(WorkerLostError),
        text="The worker running this message stopped renewing its lease (worker lost).",
        traceback=None,
    ).as_dict()


def _one(reply: list[Any]) -> Any:
    return reply[0]


class BaseBroker(ABC):
    """Common ground of the sync and async brokers.

    Args:
        dlq_ttl: how long (ms) failed messages are kept in the dead-letter queue; ``None`` or 0
            keeps no copy.
    """

    backend: Any

    def __init__(self, dlq_ttl: int | None = None) -> None:
        self.dlq_ttl = dlq_ttl
        self._registered: dict[str, float] = {}
        self._one_queue_per_call: bool | None = None

    # -- interface (spec) ------------------------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """Settings that rebuild this broker in another process."""
        raise NotImplementedError()

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
    def in_dlq(self, message: Message) -> bool | Any:
        """Whether a dead-letter copy of the message exists."""

    @abstractmethod
    def sync_from_backend(self, message: Message) -> Message | Any:
        """Read the stored version of the message (queue first, then DLQ)."""

    @abstractmethod
    def sync_to_backend(self, message: Message) -> Any | None:
        """Overwrite the stored version of the message (queue first, then DLQ)."""

    # -- names -----------------------------------------------------------------------------

    @property
    def _prefix(self) -> str:
        return f"{self.backend.namespace}:"

    def _full(self, short_name: str) -> str:
        return f"{self._prefix}{short_name}"

    def _script(self, name: str, route_queue: str, *args: str | int | float) -> ScriptCall:
        """A script call routed to ``route_queue``'s slot; ARGV = prefix, now, *args."""
        route = self._full(keys.tasks_key(route_queue))
        return ScriptCall(name, route, (self._prefix, utcnow_timestamp_ms(), *args))

    def _queue_script(self, name: str, queue: str, *args: str | int | float) -> ScriptCall:
        """A script call about one queue; ARGV = prefix, now, queue, *args."""
        return self._script(name, queue, queue, *args)

    @property
    def revocations_channel(self) -> str:
        """Pub/sub channel announcing the uuid of every revoked message."""
        return self._full(keys.REVOCATIONS_CHANNEL)

    def lease_key(self, message: Message) -> str:
        """Redis key of the message's lease (python-redis-lock format: ``lock:{full name}``)."""
        return f"lock:{self._full(keys.lease_name(message.queue, message.uuid))}"

    # -- bodies ----------------------------------------------------------------------------

    def _encode_body(self, message: Message) -> str:
        """Serialize the message as stored (never with a lease), naming a field that fails."""
        return self._encode_data(message, message.data)

    def _encode_data(self, message: Message, data: dict[str, Any]) -> str:
        if data["linked_lock"] is not None:
            data["linked_lock"] = None  # ``data`` is a fresh dict: the message keeps its lease
        serializer = self.backend.serializer
        try:
            return str(serializer.forward(data))
        except TypeError as error:
            for field_name, value in data.items():
                try:
                    serializer.forward(value)
                except TypeError as field_error:
                    raise TypeError(
                        f"Message {message.uuid}: field {field_name!r} cannot be serialized "
                        f"by {serializer!r}: {field_error}"
                    ) from error
            raise

    def _decode_body(self, raw: str) -> Message:
        data = self.backend.serializer.reverse(raw)
        if not isinstance(data, dict):
            raise TypeError(f"the body is a {type(data).__name__}, not a dict of message fields")
        return Message(**data)

    # -- submit ----------------------------------------------------------------------------

    def _prepare(self, message: Message, ttl: int) -> _Prepared:
        """Check a message can be submitted and encode it; its ready time is computed once (it
        derives from the backoff settings)."""
        data = message.data
        self._check_submittable(message, data["ready_at"], ttl)
        return _Prepared(message, self._encode_data(message, data), data["ready_at"])

    @staticmethod
    def _check_submittable(message: Message, ready_at: int, ttl: int) -> None:
        if not 0 <= message.priority <= MAX_PRIORITY:
            raise ValueError(
                f"Message {message.uuid}: priority {message.priority} is outside "
                f"0..{MAX_PRIORITY} (Redis sorted-set scores are doubles)"
            )
        wait = ready_at - utcnow_timestamp_ms()
        if wait >= ttl:
            raise ValueError(
                f"Message {message.uuid}: it is ready in {wait} ms (delay or ready_at) but its "
                f"ttl is {ttl} ms, so it would expire before it is ready"
            )

    @staticmethod
    def _check_ttl(ttl: int) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise ValueError(f"ttl must be a positive number of milliseconds, got {ttl!r}")

    def _submit_steps(
        self,
        messages: Sequence[Message],
        ttl: int,
        effects: Sequence[Sequence[Effect]] | None,
    ) -> Steps[list[str]]:
        """Submit every message; returns the uuids refused because they already exist.

        Messages of one queue go in chunks, each chunk one atomic script call; a chunk refused
        for a conflicting uuid is sent again without it, so all other messages are written.
        """
        self._check_ttl(ttl)
        if effects is not None and len(effects) != len(messages):
            raise ValueError("effects must hold one sequence of effects per message")
        prepared = [self._prepare(message, ttl) for message in messages]
        pending: list[list[int]] = []
        by_queue: dict[str, list[int]] = {}
        for index, message in enumerate(messages):
            by_queue.setdefault(message.queue, []).append(index)
        for indexes in by_queue.values():
            pending += [
                indexes[start : start + SUBMIT_CHUNK_SIZE]
                for start in range(0, len(indexes), SUBMIT_CHUNK_SIZE)
            ]
        registrations = self._registration_calls(messages, ttl)
        conflicts: list[str] = []
        while pending:
            calls = [self._submit_call(prepared, chunk, ttl, effects) for chunk in pending]
            replies = yield [*calls, *registrations]
            self._mark_registered(registrations)
            registrations = []
            retry: list[list[int]] = []
            for chunk, reply in zip(pending, replies):
                if reply[0] == "EXISTS":
                    conflicts.append(str(reply[1]))
                    rest = [i for i in chunk if messages[i].uuid != reply[1]]
                    if rest:
                        retry.append(rest)
            pending = retry
        return conflicts

    def _submit_call(
        self,
        prepared: Sequence[_Prepared],
        chunk: Sequence[int],
        ttl: int,
        effects: Sequence[Sequence[Effect]] | None,
    ) -> ScriptCall:
        queue = prepared[chunk[0]].message.queue
        args: list[str | int | float] = [ttl, len(chunk)]
        chunk_effects: list[Effect] = []
        for index in chunk:
            message, body, ready_at = prepared[index]
            args += [message.task_name, message.uuid, message.priority, ready_at, body]
            if effects is not None:
                chunk_effects.extend(effects[index])
        return self._queue_script("submit", queue, *args, *encode_effects(chunk_effects))

    def _registration_calls(self, messages: Iterable[Message], ttl: int) -> list[Call]:
        """Registry updates for the queues this broker has not registered lately."""
        now = time.monotonic()
        stale = REGISTRY_REFRESH_SECONDS
        return [
            ScriptCall(
                "register",
                self._full(keys.QUEUE_REGISTRY),
                (self._prefix, utcnow_timestamp_ms(), queue, ttl),
            )
            for queue in dict.fromkeys(message.queue for message in messages)
            if now - self._registered.get(queue, -stale) >= stale
        ]

    def _mark_registered(self, calls: Iterable[Call]) -> None:
        now = time.monotonic()
        for call in calls:
            assert isinstance(call, ScriptCall)
            self._registered[str(call.args[2])] = now

    def _submit_one_steps(
        self, message: Message, ttl: int, effects: Sequence[Effect]
    ) -> Steps[None]:
        conflicts = yield from self._submit_steps([message], ttl, [effects])
        if conflicts:
            raise MessageAlreadyExistsError(
                f"'{keys.message_key(message.queue, message.uuid)}' found in backend: "
                f"a different message with uuid {message.uuid} was already submitted"
            )

    def _submit_many_steps(
        self,
        messages: Sequence[Message],
        ttl: int,
        effects: Sequence[Sequence[Effect]] | None,
    ) -> Steps[None]:
        if len({message.uuid for message in messages}) != len(messages):
            raise ValueError("submit_many was given the same uuid more than once")
        conflicts = yield from self._submit_steps(messages, ttl, effects)
        if conflicts:
            raise MessageAlreadyExistsError(
                f"{len(conflicts)} of {len(messages)} messages were not submitted because a "
                f"different message with the same uuid exists: {', '.join(conflicts[:10])}"
                + (" ..." if len(conflicts) > 10 else "")
            )

    # -- claim and leases ------------------------------------------------------------------

    def _claim_steps(
        self,
        sources: Sequence[ClaimSource],
        n: int,
        owner_id: str,
        lease_ttl: int,
        status: ClaimStatus | None,
        request_id: str | None,
    ) -> Steps[Claim]:
        if n <= 0:
            raise ValueError(f"claim needs n >= 1, got {n}")
        if not sources:
            raise ValueError("claim needs at least one source queue")
        # One call for every queue on a single Redis; one per queue, in order, on a Cluster
        # (a script may touch one slot only).
        groups = [[source] for source in sources] if self.one_queue_per_call else [sources]
        messages: list[Message] = []
        dues: list[int] = []
        rejected = 0
        for index, group in enumerate(groups):
            rid = f"{request_id}:{index}" if request_id and len(groups) > 1 else request_id
            call = self._claim_call(group, n - len(messages), owner_id, lease_ttl, status, rid)
            reply = _one((yield [call]))
            claimed, rejects = self._parse_claim(reply, status)
            if rejects:
                yield rejects
            messages += claimed
            rejected += len(rejects)
            if int(reply[0]) >= 0:
                dues.append(int(reply[0]))
            if len(messages) >= n:
                break
        return Claim(messages, min(dues) if dues else None, rejected)

    @property
    def one_queue_per_call(self) -> bool:
        """Whether scripts may touch one queue only per call (Redis Cluster)."""
        if self._one_queue_per_call is None:
            self._one_queue_per_call = "cluster" in type(self.backend.conn).__module__
        return self._one_queue_per_call

    def _claim_call(
        self,
        sources: Sequence[ClaimSource],
        n: int,
        owner_id: str,
        lease_ttl: int,
        status: ClaimStatus | None,
        request_id: str | None,
    ) -> ScriptCall:
        args: list[str | int | float] = [n, lease_ttl, owner_id, request_id or ""]
        args += encode_claim_status(status)
        args.append(len(sources))
        for source in sources:
            if source.tasks:
                args += [source.queue, len(source.tasks), *source.tasks]
            else:
                args += [source.queue, -len(source.exclude), *source.exclude]
        return self._script("claim", sources[0].queue, *args)

    def _parse_claim(
        self, reply: list[Any], status: ClaimStatus | None
    ) -> tuple[list[Message], list[Call]]:
        """Messages of a claim reply, and DLQ calls for bodies that cannot be decoded (which
        replace the claim's status write, if any, with the status's rejected one)."""
        messages: list[Message] = []
        rejects: list[Call] = []
        for offset in range(1, len(reply), 6):
            queue, task_name, uuid, raw, lost, owner = reply[offset : offset + 6]
            try:
                message = self._decode_body(raw)
            except Exception as error:  # whatever the decoding failure, the body is unusable
                reason = f"Undecodable message body ({type(error).__name__}: {error})"
                log.error("Moving message %s of queue %r to the DLQ: %s", uuid, queue, reason)
                effects = status.rejected_effects(queue, task_name, uuid) if status else []
                rejects.append(self._fail_script(queue, uuid, owner, raw, reason, effects))
                continue
            message.linked_lock = {"name": keys.lease_name(queue, uuid), "owner_id": owner}
            if int(lost):
                message.update(
                    retries=message.retries + int(lost),
                    exception_details=_worker_lost_details(),
                    updated_at=utcnow_timestamp_ms(),
                )
            messages.append(message)
        return messages, rejects

    def _renew_steps(self, messages: Sequence[Message], lease_ttl: int) -> Steps[list[bool | None]]:
        if not messages:
            return []
        args: list[str | int | float] = [lease_ttl, len(messages)]
        for message in messages:
            args += [message.queue, message.uuid, lease_owner(message)]
        flags = _one((yield [self._script("renew", messages[0].queue, *args)]))
        return [None if flag < 0 else bool(flag) for flag in flags]

    def _release_steps(self, message: Message) -> Steps[None]:
        owner = lease_owner(message)
        if not owner:
            raise AttributeError(f"{message.summary} carries no lease to release")
        reply = yield [self._queue_script("release", message.queue, message.uuid, owner)]
        self._check_code(_one(reply), message, "release")
        message.linked_lock = None

    def _reclaim_steps(self, queues: Sequence[str] | None) -> Steps[int]:
        names = list(queues) if queues is not None else (yield from self._queues_steps())
        if not names:
            return 0
        groups = [[name] for name in names] if self.one_queue_per_call else [names]
        replies = yield [self._script("reclaim", group[0], *group) for group in groups]
        return sum(int(reply) for reply in replies)

    # -- finishing a message ---------------------------------------------------------------

    @staticmethod
    def _check_code(reply: Any, message: Message, operation: str) -> str:
        code = str(reply)
        if code == "LEASE_LOST":
            raise LeaseLostError(
                f"Cannot {operation} {message.summary}: its lease ({lease_owner(message)}) "
                "expired or was taken over by another worker; nothing was changed"
            )
        if code == "NOT_FOUND":
            raise MessageDoesNotExistsError(f"{message.summary} does not exist in the broker")
        return code

    def _ack_steps(
        self,
        message: Message,
        effects: Sequence[Effect],
        operation: str,
        then_submit: Message | None = None,
        then_submit_effects: Sequence[Effect] = (),
    ) -> Steps[bool]:
        """Ack (or remove); ``then_submit`` (a callback) is submitted in the same round trip.

        Returns ``False`` when the message was already gone (a repeat of our own ack after a
        lost reply, a revocation, or someone else finishing it); effects then did not apply.
        The next message goes first: if the ack is then refused, the message runs again and
        its repeated submit of the same next message is recognised by uuid.
        """
        calls: list[Call] = []
        if then_submit is not None:
            ttl = DEFAULT_TTL
            next_one = self._prepare(then_submit, ttl)
            calls.append(self._submit_call([next_one], [0], ttl, [then_submit_effects]))
            calls += self._registration_calls([then_submit], ttl)
        calls.append(
            self._queue_script(
                "ack", message.queue, message.uuid, lease_owner(message), *encode_effects(effects)
            )
        )
        replies = yield calls
        if then_submit is not None and replies[0][0] == "EXISTS":
            log.info("Next message %s was already submitted with another body", then_submit.uuid)
        code = self._check_code(replies[-1], message, operation)
        message.linked_lock = None
        return code == "OK"

    def _retry_steps(self, message: Message, effects: Sequence[Effect]) -> Steps[None]:
        updated = message.clone()
        updated.increment_retries()
        updated.update(
            ready_at=utcnow_timestamp_ms() + updated.get_backoff_duration(), linked_lock=None
        )
        call = self._queue_script(
            "retry",
            message.queue,
            message.uuid,
            lease_owner(message),
            self._encode_body(updated),
            updated.ready_at,
            *encode_effects(effects),
        )
        self._check_code(_one((yield [call])), message, "retry")
        message.update(
            retries=updated.retries,
            updated_at=updated.updated_at,
            ready_at=updated.ready_at,
            linked_lock=None,
        )
        log.info("Retrying %s in %s ms", message.summary, updated.get_backoff_duration())

    @staticmethod
    def failure_reason(message: Message) -> str:
        """One line saying why a message failed, from its exception details."""
        details = message.exception_details
        if details is None:
            return "failed"
        return f"{details.name}: {details.text}" if details.text else details.name

    def _fail_script(
        self, queue: str, uuid: str, owner: str, body: str, reason: str, effects: Sequence[Effect]
    ) -> ScriptCall:
        ttl = self.dlq_ttl or 0
        return self._queue_script(
            "fail", queue, uuid, owner, body, reason, ttl, *encode_effects(effects)
        )

    def _fail_steps(self, message: Message, effects: Sequence[Effect]) -> Steps[None]:
        call = self._fail_script(
            message.queue,
            message.uuid,
            lease_owner(message),
            self._encode_body(message),
            self.failure_reason(message),
            effects,
        )
        self._check_code(_one((yield [call])), message, "fail")
        message.linked_lock = None

    def _revoke_steps(self, message: Message, effects: Sequence[Effect]) -> Steps[None]:
        call = self._queue_script(
            "revoke",
            message.queue,
            message.uuid,
            DEFAULT_TTL,
            self._encode_body(message),
            self.failure_reason(message),
            self.dlq_ttl or 0,
            self.revocations_channel,
            *encode_effects(effects),
        )
        yield [call]
        message.linked_lock = None

    # -- reading ---------------------------------------------------------------------------

    def _exists_steps(self, short_name: str) -> Steps[bool]:
        return bool(_one((yield [CommandCall(("EXISTS", self._full(short_name)))])))

    def _revoked_steps(self, messages: Sequence[Message]) -> Steps[list[bool]]:
        if not messages:
            return []
        replies = yield [
            CommandCall(("EXISTS", self._full(keys.revoked_key(m.queue, m.uuid)))) for m in messages
        ]
        return [bool(reply) for reply in replies]

    def _sync_from_steps(self, message: Message) -> Steps[Message]:
        replies = yield [
            CommandCall(
                ("HGET", self._full(keys.message_key(message.queue, message.uuid)), "data")
            ),
            CommandCall(("HGET", self._full(keys.dlq_key(message.queue, message.uuid)), "data")),
        ]
        raw = replies[0] if replies[0] is not None else replies[1]
        if raw is None:
            raise KeyError(f"{message.summary} is neither in its queue nor in the DLQ")
        return self._decode_body(raw)

    def _sync_to_steps(self, message: Message) -> Steps[None]:
        call = self._queue_script(
            "sync_to", message.queue, message.uuid, self._encode_body(message)
        )
        self._check_code(_one((yield [call])), message, "sync")

    def _queues_steps(self) -> Steps[list[str]]:
        members = _one((yield [CommandCall(("SMEMBERS", self._full(keys.QUEUE_REGISTRY)))]))
        return sorted(members)

    def _queue_list_steps(self, queue: str | None) -> Steps[list[str]]:
        if queue is not None:
            return [queue]
        return (yield from self._queues_steps())

    # -- dead-letter queue -----------------------------------------------------------------

    def _prune_dlq_call(self, queue: str) -> Call:
        index = self._full(keys.dlq_index_key(queue))
        return CommandCall(("ZREMRANGEBYSCORE", index, "-inf", utcnow_timestamp_ms()))

    def _dlq_count_steps(self, queue: str | None) -> Steps[int]:
        queues = yield from self._queue_list_steps(queue)
        if not queues:
            return 0
        calls: list[Call] = []
        for name in queues:
            calls += [
                self._prune_dlq_call(name),
                CommandCall(("ZCARD", self._full(keys.dlq_index_key(name)))),
            ]
        replies = yield calls
        return sum(int(count) for count in replies[1::2])

    def _dlq_list_steps(self, queue: str | None, limit: int | None) -> Steps[list[DeadLetter]]:
        queues = yield from self._queue_list_steps(queue)
        if not queues:
            return []
        stop = -1 if limit is None else max(limit, 1) - 1
        calls: list[Call] = []
        for name in queues:
            index = self._full(keys.dlq_index_key(name))
            calls += [self._prune_dlq_call(name), CommandCall(("ZRANGE", index, 0, stop))]
        replies = yield calls
        entries = [(name, uuid) for name, uuids in zip(queues, replies[1::2]) for uuid in uuids]
        if limit is not None:
            entries = entries[:limit]
        if not entries:
            return []
        bodies = yield [
            CommandCall(("HGETALL", self._full(keys.dlq_key(name, uuid)))) for name, uuid in entries
        ]
        return [
            self._dead_letter(name, uuid, fields)
            for (name, uuid), fields in zip(entries, bodies)
            if fields
        ]

    def _dead_letter(self, queue: str, uuid: str, fields: dict[str, str]) -> DeadLetter:
        raw = fields.get("data", "")
        try:
            message: Message | None = self._decode_body(raw)
        except Exception:  # an undecodable body is kept raw, with its reason
            message = None
        return DeadLetter(
            queue=queue,
            uuid=uuid,
            message=message,
            reason=fields.get("reason", ""),
            failed_at=int(fields.get("failed_at") or 0),
            raw=raw,
        )

    def _requeue_steps(self, message: Message, ttl: int) -> Steps[Message]:
        self._check_ttl(ttl)
        fresh = message.clone()
        fresh.update(retries=0, ready_at=utcnow_timestamp_ms(), linked_lock=None)
        call = self._queue_script(
            "requeue",
            fresh.queue,
            fresh.task_name,
            fresh.uuid,
            fresh.priority,
            fresh.ready_at,
            self._encode_body(fresh),
            ttl,
        )
        code = self._check_code(_one((yield [call])), message, "requeue")
        if code == "EXISTS":
            raise MessageAlreadyExistsError(
                f"Cannot requeue {message.summary}: a message with its uuid is already queued"
            )
        return fresh

    def _purge_dlq_steps(self, queue: str | None) -> Steps[int]:
        queues = yield from self._queue_list_steps(queue)
        if not queues:
            return 0
        replies = yield [self._queue_script("purge_dlq", name) for name in queues]
        return sum(int(count) for count in replies)

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
        return _one((yield [CommandCall(("BLPOP", *names, timeout))])) is not None

    @staticmethod
    def _lease_ttl(lease_ttl: int | None) -> int:
        return DEFAULT_LEASE_TTL if lease_ttl is None else lease_ttl
