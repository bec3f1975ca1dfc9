"""Submitting messages, as steps: checks, chunked script calls, and the queue registry.

Messages of one queue go in chunks, each chunk one atomic ``submit`` call with a request id of
its own (so the call re-sent after a lost reply changes nothing, even once its messages ran); a
chunk refused for a conflicting or revoked uuid is sent again without it, so every other
message is written. The first submit to a queue (and one every ``REGISTRY_REFRESH_SECONDS``)
also records the queue in the namespace's registry, which consumers of "all queues" read.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from alsek.core.broker import keys
from alsek.core.broker.effects import (
    Effect,
    LimitEffect,
    effect_commands,
    effect_keys,
    encode_effects,
)
from alsek.core.broker.registry import RegistrySteps
from alsek.core.broker.replies import EXISTS, REVOKED, REVOKED_ADVICE, WANT
from alsek.core.message import Message
from alsek.core.middleware import MiddlewareStack, hook_steps
from alsek.core.steps.ops import Command, Request, ScriptCall, Steps
from alsek.core.steps.outage import (
    SUBMIT_OUTAGE_PATIENCE_MS,
    SUBMIT_OUTAGE_PAUSES_MS,
    sent_through_outage,
)
from alsek.core.task_limits import carried_limits
from alsek.defaults import DEFAULT_TTL
from alsek.exceptions import MessageAlreadyExistsError
from alsek.utils.temporal import utcnow_timestamp_ms

#: Messages per submit script call: big enough to amortise the round trip, small enough to keep
#: each call short (Redis runs one script at a time).
SUBMIT_CHUNK_SIZE = 500
#: Redis scores are doubles: integers above this lose precision, and with it ordering.
MAX_PRIORITY = 2**53 - 1


class _Refused(NamedTuple):
    """The uuids a submit did not write: queued with another body, revoked, or yielding to the
    holder of their unique key (uuid -> holder's uuid and body, ``""`` once it is gone)."""

    existing: list[str]
    revoked: list[str]
    yielded: dict[str, tuple[str, str]]


class FollowUp(NamedTuple):
    """A message submitted within another operation's round trip (the next of a callback
    chain, an ``on_success`` or ``on_failure`` handler), with its own effects."""

    message: Message
    effects: Sequence[Effect] = ()


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


def limit_effects(message: Message) -> list[Effect]:
    """The effect writing the limits ``message`` carries into its hash, for the claim script
    (none when it carries none)."""
    limits = carried_limits(message)
    return [LimitEffect(message.queue, message.uuid, *limits)] if limits else []


@lru_cache(maxsize=4096)
def _submitted_task_keys(prefix: str, queue: str, task_name: str) -> tuple[str, str]:
    """Full names of the task keys a submit touches (its ready and delayed sets): the same
    for every submit of the task, so built once."""
    ready = keys.ready_key(queue, task_name)
    delayed = keys.task_index_key(queue, task_name, "delayed")
    return prefix + ready, prefix + delayed


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


class SubmitSteps(RegistrySteps):
    """The submit operations of a broker (which register the queues they submit to), with
    the ``before_submit`` and ``after_submit`` hooks of its middleware."""

    _middleware: MiddlewareStack

    def _middleware_steps(self, name: str, messages: Sequence[Message]) -> Steps[None]:
        """Call the middleware's hook ``name`` for each of ``messages`` (submits, revoke)."""
        hooks = self._middleware.hooks(name)
        if hooks:
            for message in messages:
                yield from hook_steps(hooks, message)

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
        beside: Sequence[Request] = (),
    ) -> Steps[_Refused]:
        """Submit every message; returns the uuids refused (existing with another body, or
        revoked). ``beside``: idempotent requests sent first, in the first round trip (a
        group's record)."""
        check_ttl(ttl)
        if effects is not None and len(effects) != len(messages):
            raise ValueError("effects must hold one sequence of effects per message")
        prepared = [self._prepare(message, ttl) for message in messages]
        pending = _chunks(messages)
        unregistered = self._unregistered(messages)
        registrations = [self._register_call(queue, ttl) for queue in unregistered]
        effects, indexing = self._records(messages, ttl, effects)
        refused = _Refused([], [], {})
        # Keys of unique keys' holders a chunk was asked to name (WANT), found in data.
        wanted: dict[tuple[int, ...], list[str]] = {}
        while pending:
            calls = [
                self._submit_call(prepared, chunk, ttl, effects, extra=wanted.get(tuple(chunk)))
                for chunk in pending
            ]
            # A submit cut off by a connection error is sent again as is: if it had reached
            # Redis, its request id makes the second one change nothing (uuid records sent
            # beside it, on a Cluster, are plain SETs: a repeat writes the same).
            replies = yield from sent_through_outage(
                self._write(*beside, *calls, *registrations, *indexing),
                SUBMIT_OUTAGE_PATIENCE_MS,
                SUBMIT_OUTAGE_PAUSES_MS,
            )
            replies = replies[len(beside) :]
            self._mark_registered(unregistered)
            registrations, unregistered, indexing, beside = [], [], [], ()
            retry: list[list[int]] = []
            for chunk, reply in zip(pending, replies):
                if reply[0] == WANT:
                    retry.append(_wanting(wanted, chunk, reply[2:]))
                    continue
                for at in range(2, len(reply), 3):
                    refused.yielded[str(reply[at])] = (str(reply[at + 1]), str(reply[at + 2]))
                if reply[0] in (EXISTS, REVOKED):
                    (refused.existing if reply[0] == EXISTS else refused.revoked).append(
                        str(reply[1])
                    )
                    rest = [i for i in chunk if messages[i].uuid != reply[1]]
                    if rest:
                        retry.append(rest)
            pending = retry
        return refused

    def _records(
        self,
        messages: Sequence[Message],
        ttl: int,
        effects: Sequence[Sequence[Effect]] | None,
    ) -> tuple[list[list[Effect]], list[Command]]:
        """Each message's effects, and the uuid record commands to send beside the scripts.

        On one Redis the submit script writes each message's record itself (queue and task);
        a message of a callback chain adds its own with its progenitor as an effect. On a
        Cluster (the records are in other slots) every record is a command beside the script.
        """
        given = effects if effects is not None else [()] * len(messages)
        if not self.one_queue_per_call:
            return [
                [*own, self._uuid_record(message, ttl)] if message.progenitor_uuid else list(own)
                for message, own in zip(messages, given)
            ], []
        commands: list[Command] = []
        for message in messages:
            commands += effect_commands([self._uuid_record(message, ttl)])
        return [list(own) for own in given], commands

    def _submit_call(
        self,
        prepared: Sequence[_Prepared],
        chunk: Sequence[int],
        ttl: int,
        effects: Sequence[Sequence[Effect]] | None,
        request_id: str | None = None,
        extra: Sequence[str] | None = None,
    ) -> ScriptCall:
        """One ``submit`` call; ``request_id`` defaults to a fresh one (a call sent again as
        is, by redis-py or the batcher, carries the same); ``extra``: more keys to declare
        (those a WANT reply named)."""
        queue = prepared[chunk[0]].message.queue
        record_ttl = 0 if self.one_queue_per_call else ttl + (self.dlq_ttl or 0)
        args: list[str | int | float] = [ttl, request_id or secrets.token_hex(16), record_ttl]
        args.append(len(chunk))
        declared: list[str] = []
        for index in chunk:
            message, body, ready_at = prepared[index]
            own = effects[index] if effects is not None else ()
            args += [message.task_name, message.uuid, message.priority, ready_at, body]
            own = [*own, *limit_effects(message)]
            args += encode_effects(own)
            declared += self._submitted_keys(message, own, bool(record_ttl))
        return self._queue_script("submit", queue, *args, declared=[*declared, *(extra or ())])

    def _submitted_keys(
        self, message: Message, effects: Sequence[Effect], recorded: bool
    ) -> list[str]:
        """The keys a submit of ``message`` may touch: its body and revocation flag, its task's
        ready and delayed sets, its effects' keys, and its uuid record when the script writes
        it. A unique key's holder, found in data, is named after a WANT reply."""
        queue, uid, prefix = message.queue, message.uuid, self._prefix
        names = [prefix + keys.message_key(queue, uid), prefix + keys.revoked_key(queue, uid)]
        names += _submitted_task_keys(prefix, queue, message.task_name)
        names += effect_keys(effects)
        if recorded:
            names.append(self._full(keys.uuid_key(uid)))
        return names

    def _next_message_calls(self, message: Message, effects: Sequence[Effect]) -> list[Request]:
        """Requests submitting ``message`` (the next of a callback chain) within another
        operation's round trip: the submit first, then its uuid record and any registration
        its queue needs."""
        ttl = DEFAULT_TTL
        request_id = f"next:{message.uuid}"
        prepared = [self._prepare(message, ttl)]
        recorded, beside = self._records([message], ttl, [effects])
        calls: list[Request] = [self._submit_call(prepared, [0], ttl, recorded, request_id)]
        calls += beside
        return calls + [self._register_call(queue, ttl) for queue in self._unregistered([message])]

    def _next_message_again_steps(
        self, message: Message, effects: Sequence[Effect], wanted: Sequence[str]
    ) -> Steps[list[Any]]:
        """Send the submit of ``message`` (the next of a chain, sent with an ack or fail)
        again, naming the keys its ``WANT`` reply asked for (its unique key's holder); its
        request id stays ``next:<uuid>``. Returns its last reply."""
        extra = list(wanted)
        prepared = [self._prepare(message, DEFAULT_TTL)]
        recorded, _ = self._records([message], DEFAULT_TTL, [effects])
        reply: list[Any] = [WANT]
        for _ in range(MAX_WANT_ROUNDS):
            request_id = f"next:{message.uuid}"
            call = self._submit_call(prepared, [0], DEFAULT_TTL, recorded, request_id, extra)
            [reply] = yield self._write(call)
            if reply[0] != WANT:
                break
            extra += reply[2:]
        return reply

    def _submit_one_steps(
        self, message: Message, ttl: int, effects: Sequence[Effect]
    ) -> Steps[Message]:
        """Submit ``message``; returns it, or the message holding its unique key, which it
        yielded to (its body, or ``message`` under its uuid once it is gone: nothing written)."""
        yield from self._middleware_steps("before_submit", [message])
        refused = yield from self._submit_steps([message], ttl, [effects])
        if message.uuid in refused.yielded:
            holder, body = refused.yielded[message.uuid]
            return self._decode_body(body) if body else message.clone().update(uuid=holder)
        if refused.revoked:
            raise MessageAlreadyExistsError(
                f"Message {message.uuid} was revoked, so it is not submitted again: "
                f"{REVOKED_ADVICE}"
            )
        if refused.existing:
            raise MessageAlreadyExistsError(
                f"'{keys.message_key(message.queue, message.uuid)}' found in backend: "
                f"a different message with uuid {message.uuid} was already submitted"
            )
        yield from self._middleware_steps("after_submit", [message])
        return message

    def _submit_many_steps(
        self,
        messages: Sequence[Message],
        ttl: int,
        effects: Sequence[Sequence[Effect]] | None,
        beside: Sequence[Request] = (),
    ) -> Steps[None]:
        if len({message.uuid for message in messages}) != len(messages):
            raise ValueError("submit_many was given the same uuid more than once")
        yield from self._middleware_steps("before_submit", messages)
        refused = yield from self._submit_steps(messages, ttl, effects, beside)
        unwritten = {*refused.existing, *refused.revoked, *refused.yielded}
        written = [message for message in messages if message.uuid not in unwritten]
        yield from self._middleware_steps("after_submit", written)
        problems = []
        if refused.existing:
            problems.append(
                f"a different message with the same uuid exists: {_listed(refused.existing)}"
            )
        if refused.revoked:
            problems.append(f"revoked ({REVOKED_ADVICE}): {_listed(refused.revoked)}")
        if problems:
            count = len(refused.existing) + len(refused.revoked)
            raise MessageAlreadyExistsError(
                f"{count} of {len(messages)} messages were not submitted; " + "; ".join(problems)
            )


#: Times a chunk of a submit is sent again naming the keys its unique keys' holders need: its
#: holder's body and lease first, then (read from its body) its task's sets, status and limits;
#: more only while holders change between calls.
MAX_WANT_ROUNDS = 5


def _wanting(
    wanted: dict[tuple[int, ...], list[str]], chunk: list[int], keys: list[str]
) -> list[int]:
    """Add ``keys`` to what ``chunk`` declares when sent again; refuse to go on for ever."""
    rounds = wanted.setdefault((-1, *chunk), [])
    if len(rounds) >= MAX_WANT_ROUNDS:
        raise RuntimeError(
            f"A submit kept meeting new holders of its unique keys ({len(rounds)} times): the "
            "keys are changing hands too fast; submit again"
        )
    rounds.append("")
    wanted.setdefault(tuple(chunk), []).extend(keys)
    return chunk


def _listed(uuids: Sequence[str]) -> str:
    return ", ".join(uuids[:10]) + (" ..." if len(uuids) > 10 else "")
