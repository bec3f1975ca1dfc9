"""Submitting messages, as steps: checks, chunked script calls, and the queue registry.

Messages of one queue go in chunks, each chunk one atomic ``submit`` call; a chunk refused for a
conflicting uuid is sent again without it, so every other message is written. The first submit
to a queue (and one every ``REGISTRY_REFRESH_SECONDS``) also records the queue in the
namespace's registry, which consumers of "all queues" read.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from alsek.core.broker import keys
from alsek.core.broker.calls import BrokerCalls
from alsek.core.broker.effects import Effect, encode_effects
from alsek.core.broker.replies import EXISTS
from alsek.core.broker.scripts import get_script
from alsek.core.message import Message
from alsek.core.steps.ops import ScriptCall, Steps
from alsek.defaults import DEFAULT_TTL
from alsek.exceptions import MessageAlreadyExistsError
from alsek.utils.temporal import utcnow_timestamp_ms

#: Messages per submit script call: big enough to amortise the round trip, small enough to keep
#: each call short (Redis runs one script at a time).
SUBMIT_CHUNK_SIZE = 500
#: Redis scores are doubles: integers above this lose precision, and with it ordering.
MAX_PRIORITY = 2**53 - 1
#: How often a broker re-registers a queue it submits to (which refreshes the registry's TTL).
REGISTRY_REFRESH_SECONDS = 600.0


class _Prepared(NamedTuple):
    """A message checked and encoded for submission."""

    message: Message
    body: str
    ready_at: int


def check_ttl(ttl: int) -> None:
    """Refuse a ttl that is not a positive int of milliseconds."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise ValueError(f"ttl must be a positive number of milliseconds, got {ttl!r}")


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


def _chunks(messages: Sequence[Message]) -> list[list[int]]:
    """Indexes of ``messages``, by queue, in chunks of at most ``SUBMIT_CHUNK_SIZE``."""
    by_queue: dict[str, list[int]] = {}
    for index, message in enumerate(messages):
        by_queue.setdefault(message.queue, []).append(index)
    return [
        indexes[start : start + SUBMIT_CHUNK_SIZE]
        for indexes in by_queue.values()
        for start in range(0, len(indexes), SUBMIT_CHUNK_SIZE)
    ]


class SubmitSteps(BrokerCalls):
    """The submit operations of a broker, and the registry of the queues it submits to."""

    _registered: dict[str, float]

    def _prepare(self, message: Message, ttl: int) -> _Prepared:
        """Check a message can be submitted and encode it; its ready time is computed once (it
        derives from the backoff settings)."""
        data = message.data
        _check_submittable(message, data["ready_at"], ttl)
        return _Prepared(message, self._encode_data(message, data), data["ready_at"])

    def _submit_steps(
        self,
        messages: Sequence[Message],
        ttl: int,
        effects: Sequence[Sequence[Effect]] | None,
    ) -> Steps[list[str]]:
        """Submit every message; returns the uuids refused because they already exist."""
        check_ttl(ttl)
        if effects is not None and len(effects) != len(messages):
            raise ValueError("effects must hold one sequence of effects per message")
        prepared = [self._prepare(message, ttl) for message in messages]
        pending = _chunks(messages)
        unregistered = self._unregistered(messages)
        registrations = [self._register_call(queue, ttl) for queue in unregistered]
        conflicts: list[str] = []
        while pending:
            calls = [self._submit_call(prepared, chunk, ttl, effects) for chunk in pending]
            replies = yield self._write(*calls, *registrations)
            self._mark_registered(unregistered)
            registrations, unregistered = [], []
            retry: list[list[int]] = []
            for chunk, reply in zip(pending, replies):
                if reply[0] == EXISTS:
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

    def _next_message_calls(self, message: Message, effects: Sequence[Effect]) -> list[ScriptCall]:
        """Calls submitting ``message`` (the next of a callback chain) within another operation's
        round trip: the submit first, then any registration its queue needs."""
        ttl = DEFAULT_TTL
        calls = [self._submit_call([self._prepare(message, ttl)], [0], ttl, [effects])]
        return calls + [self._register_call(queue, ttl) for queue in self._unregistered([message])]

    def _unregistered(self, messages: Iterable[Message]) -> list[str]:
        """The queues of ``messages`` this broker has not registered lately."""
        now = time.monotonic()
        stale = REGISTRY_REFRESH_SECONDS
        return [
            queue
            for queue in dict.fromkeys(message.queue for message in messages)
            if now - self._registered.get(queue, -stale) >= stale
        ]

    def _register_call(self, queue: str, ttl: int) -> ScriptCall:
        """Record ``queue`` in the registry for at least ``ttl`` ms; see ``register.lua``."""
        registry = self._full(keys.QUEUE_REGISTRY)
        args = (self._prefix, utcnow_timestamp_ms(), queue, ttl)
        return ScriptCall(get_script("register"), (registry,), args)

    def _mark_registered(self, queues: Iterable[str]) -> None:
        now = time.monotonic()
        for queue in queues:
            self._registered[queue] = now

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
