"""Operations written once as *steps*, run by a blocking or an asyncio driver.

The status tracker, the result store, the integrity scanner and ``ResultPool`` define every
operation in their base classes as a generator that yields what it needs (a Redis round trip, a
subscription, the next published message, a pause) and receives the answer. ``run``/``stream``
drive such a generator on a ``redis.Redis`` client, ``async_run``/``async_stream`` on a
``redis.asyncio.Redis`` one; the sync and async classes are thin shells over them, so no decision
is written twice. ``Emit`` hands a value out of a streaming operation (``listen_to_updates``).

Subscriptions go through the process' pub/sub hub (``hub.py``) and are closed when the operation
ends, however it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import dill

from alsek.core.broker.effects import (
    Effect,
    IndexAddEffect,
    IndexRemoveEffect,
    PublishEffect,
    SetEffect,
)
from alsek.core.status.hub import (
    RESYNC,
    SUBSCRIBE_TIMEOUT_SECONDS,
    SYNC_TOKEN_PREFIX,
    AsyncSubscription,
    Item,
    Subscription,
    SyncToken,
    async_subscribe,
    subscribe,
)
from alsek.storage.backends.base import BaseBackend
from alsek.storage.batching import async_batcher_for, batcher_for
from alsek.utils.system import stop_requested

T = TypeVar("T")

Command = tuple[Any, ...]

#: Longest uninterrupted wait of an operation that gives up when the process is told to stop.
STOP_CHECK_SECONDS = 0.25


@dataclass(frozen=True)
class Call:
    """One round trip: ``commands`` pipelined, in a MULTI/EXEC transaction when ``atomic``.

    ``batched`` marks idempotent reads, which may share a pipeline with other callers' reads
    (see ``batch``) and be sent again if that pipeline is interrupted.
    """

    commands: tuple[Command, ...]
    atomic: bool = False
    batched: bool = False


@dataclass(frozen=True)
class Subscribe:
    """Subscribe to ``channels`` through the hub; the reply is the subscription."""

    channels: tuple[str, ...]


@dataclass(frozen=True)
class Receive:
    """The subscription's next item, or ``None`` after ``timeout`` seconds (``None``: no limit)."""

    subscription: Any
    timeout: float | None


@dataclass(frozen=True)
class Sleep:
    """Pause (only where no pub/sub is available to wake the operation)."""

    seconds: float


@dataclass(frozen=True)
class Emit:
    """Hand ``value`` to whoever iterates a streaming operation."""

    value: Any


Op = Call | Subscribe | Receive | Sleep | Emit
Steps = Generator[Op, Any, T]


def call(*commands: Command, atomic: bool = False) -> Call:
    """A round trip of ``commands``."""
    return Call(tuple(commands), atomic=atomic)


def read(*commands: Command) -> Call:
    """A round trip of idempotent reads, batched with concurrent callers' reads."""
    return Call(tuple(commands), batched=True)


# -- shared building blocks ---------------------------------------------------------------------

#: Read a key and mark the read's place in a channel's stream (see ``hub``): KEYS[1] the key,
#: ARGV[1] the channel, ARGV[2] the sync token payload.
SNAPSHOT_SCRIPT = """
local value = redis.call('GET', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return value
"""


def snapshot_steps(subscription: Any, key: str, channel: str) -> Steps[str | None]:
    """The value of ``key``, once every publish on ``channel`` before the read was received.

    Items received before the sync token describe writes the snapshot already holds, so they
    are dropped. A ``RESYNC`` meanwhile may have cost the token: read again.
    """
    while True:
        token = subscription.new_token()
        [raw] = yield read(("EVAL", SNAPSHOT_SCRIPT, 1, key, channel, SYNC_TOKEN_PREFIX + token))
        while True:
            item = yield Receive(subscription, SUBSCRIBE_TIMEOUT_SECONDS)
            if item is None:
                raise TimeoutError(f"Redis did not deliver the sync token on {channel!r}")
            if item == SyncToken(token):
                return raw
            if item is RESYNC:
                break


def wait_steps(
    subscription: Any, deadline: float | None, poll_seconds: float = STOP_CHECK_SECONDS
) -> Steps[Item | None]:
    """Wait for the next item until ``deadline`` (monotonic); ``None`` when it passed.

    Gives up early, returning ``None``, when the process is told to stop. Without a
    subscription (no pub/sub) it pauses ``poll_seconds`` instead, for the caller to look again.
    """
    while not stop_requested():
        remaining = seconds_left(deadline)
        if remaining is not None and remaining <= 0:
            return None
        if subscription is None:
            yield Sleep(poll_seconds if remaining is None else min(remaining, poll_seconds))
            return None
        pause = STOP_CHECK_SECONDS if remaining is None else min(remaining, STOP_CHECK_SECONDS)
        item = yield Receive(subscription, pause)
        if item is not None:
            return item
    return None


def seconds_left(deadline: float | None) -> float | None:
    """Seconds until the monotonic ``deadline`` (never negative), ``None`` for no deadline."""
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)


def deadline_after(seconds: float | None) -> float | None:
    """The monotonic time ``seconds`` from now, ``None`` for no limit."""
    return None if seconds is None else time.monotonic() + seconds


def first_emitted(steps: Steps[Any], accept: Callable[[Any], bool]) -> Steps[tuple[Any, bool]]:
    """Run a streaming operation until it emits a value ``accept`` takes, or ends.

    Returns ``(last value emitted, accepted)``; the emitted values are not passed on.
    """
    last: Any = None
    reply: Any = None
    try:
        while True:
            try:
                op = steps.send(reply)
            except StopIteration:
                return last, False
            if isinstance(op, Emit):
                last, reply = op.value, None
                if accept(last):
                    return last, True
                continue
            reply = yield op
    finally:
        steps.close()


def effect_commands(effects: Iterable[Effect]) -> tuple[Command, ...]:
    """The Redis commands that apply ``effects`` outside a broker operation.

    Same meaning as the broker's ``apply_effects`` (lib.lua), so a write described once can ride
    with a broker operation or be sent alone.
    """
    commands: list[Command] = []
    for effect in effects:
        if isinstance(effect, SetEffect):
            command: Command = ("SET", effect.key, effect.value)
            if effect.keep_ttl:
                command += ("KEEPTTL",)
            elif effect.ttl:
                command += ("PX", effect.ttl)
            commands.append(command + (("NX",) if effect.nx else ()))
        elif isinstance(effect, PublishEffect):
            commands.append(("PUBLISH", effect.channel, effect.payload))
        elif isinstance(effect, IndexAddEffect):
            commands.append(("ZADD", effect.key, effect.score, effect.member))
            if effect.ttl:
                commands.append(("PEXPIRE", effect.key, effect.ttl))
        elif isinstance(effect, IndexRemoveEffect):
            commands.append(("ZREM", effect.key, effect.member))
        else:
            raise TypeError(f"Unknown effect {effect!r}")
    return tuple(commands)


def check_backend_kind(owner: str, backend: BaseBackend, want_async: bool) -> None:
    """Refuse a backend of the wrong kind with an error that says what to use instead."""
    if want_async and not backend.IS_ASYNC:
        raise AssertionError(f"Backend is not async: {owner} needs an async backend")
    if not want_async and backend.IS_ASYNC:
        twin = f"Async{owner}"
        raise AssertionError(f"Backend is async: {owner} needs a sync backend (or use {twin})")


def encode_value(backend: BaseBackend, value: Any, what: str) -> str:
    """``value`` in the backend's serialized form; ``TypeError`` naming ``what`` if it cannot be,
    raised before anything is sent."""
    try:
        return str(backend.serializer.forward(value))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{what} cannot be serialized by {backend.serializer!r} ({error}); nothing was written"
        ) from error


def rebuild_backend(encoded: bytes) -> Any:
    """A backend (with a new connection pool) from ``BaseBackend.encode()``'s bytes."""
    data = dill.loads(encoded)
    return data["backend"].from_settings(data["settings"])


def positive_ms(name: str, value: Any) -> int | None:
    """``value`` if it is ``None`` or a positive int of milliseconds, else ``ValueError``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ValueError(f"{name} must be a positive int of milliseconds or None, got {value!r}")
    return value


# -- drivers ------------------------------------------------------------------------------------


class _Box:
    value: Any = None


def _capture(steps: Steps[Any], box: _Box) -> Steps[None]:
    box.value = yield from steps


def _emitted(value: Any) -> None:
    raise TypeError(f"This operation streams values ({value!r}); iterate it instead")


def _round_trip(conn: Any, op: Call) -> list[Any]:
    if not op.commands:
        return []
    if op.batched:
        return batcher_for(conn).execute(conn, op.commands)
    if len(op.commands) == 1 and not op.atomic:
        return [conn.execute_command(*op.commands[0])]
    pipe = conn.pipeline(transaction=op.atomic)
    for command in op.commands:
        pipe.execute_command(*command)
    return list(pipe.execute())


def stream(steps: Steps[Any], conn: Any) -> Iterator[Any]:
    """Drive ``steps`` on a blocking client, yielding what it emits."""
    subscriptions: list[Subscription] = []
    reply: Any = None
    try:
        while True:
            try:
                op = steps.send(reply)
            except StopIteration:
                return
            reply = None
            if isinstance(op, Emit):
                yield op.value
            elif isinstance(op, Call):
                reply = _round_trip(conn, op)
            elif isinstance(op, Subscribe):
                reply = subscribe(conn, op.channels)
                subscriptions.append(reply)
            elif isinstance(op, Receive):
                reply = op.subscription.receive(op.timeout)
            else:
                time.sleep(op.seconds)
    finally:
        steps.close()
        for subscription in subscriptions:
            subscription.close()


def run(steps: Steps[T], conn: Any) -> T:
    """Drive ``steps`` on a blocking client and return its result."""
    box = _Box()
    for value in stream(_capture(steps, box), conn):
        _emitted(value)
    return box.value


async def _async_round_trip(conn: Any, op: Call) -> list[Any]:
    if not op.commands:
        return []
    if op.batched:
        return await async_batcher_for(conn).execute(conn, op.commands)
    if len(op.commands) == 1 and not op.atomic:
        return [await conn.execute_command(*op.commands[0])]
    pipe = conn.pipeline(transaction=op.atomic)
    for command in op.commands:
        pipe.execute_command(*command)
    return list(await pipe.execute())


async def async_stream(steps: Steps[Any], conn: Any) -> AsyncIterator[Any]:
    """Drive ``steps`` on an asyncio client, yielding what it emits."""
    subscriptions: list[AsyncSubscription] = []
    reply: Any = None
    try:
        while True:
            try:
                op = steps.send(reply)
            except StopIteration:
                return
            reply = None
            if isinstance(op, Emit):
                yield op.value
            elif isinstance(op, Call):
                reply = await _async_round_trip(conn, op)
            elif isinstance(op, Subscribe):
                reply = await async_subscribe(conn, op.channels)
                subscriptions.append(reply)
            elif isinstance(op, Receive):
                reply = await op.subscription.receive(op.timeout)
            else:
                await asyncio.sleep(op.seconds)
    finally:
        steps.close()
        for subscription in subscriptions:
            await subscription.close()


async def async_run(steps: Steps[T], conn: Any) -> T:
    """Drive ``steps`` on an asyncio client and return its result."""
    box = _Box()
    async for value in async_stream(_capture(steps, box), conn):
        _emitted(value)
    return box.value
