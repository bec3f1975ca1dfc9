"""The two drivers of operations written as steps: one blocking, one asyncio.

``stream``/``run`` drive an operation with a ``redis.Redis`` client (or none, for operations
that only invoke functions and sleep), ``async_stream``/``async_run`` with a
``redis.asyncio.Redis`` one. They are the only place where an op becomes I/O; they differ
only by ``await``. ``stream`` hands out what the operation emits, ``run`` returns its result.

An op that fails is raised inside the operation, at its ``yield``. Subscriptions are closed
when the operation ends, however it ends.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

from alsek.core.steps.batching import async_batcher_for, batcher_for
from alsek.core.steps.hub import (
    AsyncSubscription,
    BaseSubscription,
    Subscription,
    async_subscribe,
    subscribe,
)
from alsek.core.steps.ops import (
    Command,
    Cursor,
    Emit,
    Invoke,
    Op,
    Receive,
    RoundTrip,
    ScanKeys,
    Sleep,
    Steps,
    Subscribe,
    T,
)
from alsek.core.steps.sending import (
    async_send,
    async_send_atomic,
    first_error,
    send,
    send_atomic,
)


class _Result:
    """Where ``_capture`` keeps an operation's return value."""

    value: Any = None


def _capture(steps: Steps[Any], result: _Result) -> Steps[None]:
    result.value = yield from steps


def _refuse_emitted(value: Any) -> None:
    raise TypeError(f"This operation streams values ({value!r}); iterate it instead")


def _client(conn: Any, op: Op) -> Any:
    if conn is None:
        raise TypeError(f"{type(op).__name__} needs a Redis client; none was given to the driver")
    return conn


# -- blocking ---------------------------------------------------------------------------------


def _round_trip(conn: Any, op: RoundTrip) -> list[Any]:
    if not op.requests:
        return []
    if op.batched:
        return batcher_for(conn, op.replicas).execute(conn, op.requests)
    if op.atomic:
        return send_atomic(conn, cast(tuple[Command, ...], op.requests))
    return first_error(send(conn, op.requests, op.replicas))


def _answer(op: Op, conn: Any, subscriptions: list[BaseSubscription]) -> Any:
    """Carry out ``op`` (anything but ``Emit``) with blocking I/O."""
    if isinstance(op, RoundTrip):
        return _round_trip(_client(conn, op), op)
    if isinstance(op, Invoke):
        return op.function(*op.args, **op.kwargs)
    if isinstance(op, Subscribe):
        subscription = subscribe(_client(conn, op), op.channels)
        subscriptions.append(subscription)
        return subscription
    if isinstance(op, Receive):
        return cast(Subscription, op.subscription).receive(op.timeout)
    if isinstance(op, ScanKeys):
        return list(_client(conn, op).scan_iter(match=op.match, count=op.count))
    if isinstance(op, Sleep):
        time.sleep(op.seconds)
        return None
    raise TypeError(f"Unknown op {op!r}")


def stream(steps: Steps[Any], conn: Any = None) -> Iterator[Any]:
    """Drive ``steps`` with a blocking client, yielding what it emits."""
    cursor = Cursor(steps)
    subscriptions: list[BaseSubscription] = []
    try:
        while (op := cursor.next()) is not None:
            if isinstance(op, Emit):
                yield op.value
                continue
            try:
                cursor.answer(_answer(op, conn, subscriptions))
            except Exception as error:
                cursor.fail(error)
    finally:
        cursor.close()
        for subscription in subscriptions:
            cast(Subscription, subscription).close()


def run(steps: Steps[T], conn: Any = None) -> T:
    """Drive ``steps`` with a blocking client and return its result."""
    result = _Result()
    for value in stream(_capture(steps, result), conn):
        _refuse_emitted(value)
    return cast(T, result.value)


# -- asyncio ----------------------------------------------------------------------------------


async def _async_round_trip(conn: Any, op: RoundTrip) -> list[Any]:
    if not op.requests:
        return []
    if op.batched:
        return await async_batcher_for(conn, op.replicas).execute(conn, op.requests)
    if op.atomic:
        return await async_send_atomic(conn, cast(tuple[Command, ...], op.requests))
    return first_error(await async_send(conn, op.requests, op.replicas))


async def _async_answer(op: Op, conn: Any, subscriptions: list[BaseSubscription]) -> Any:
    """Carry out ``op`` (anything but ``Emit``) with asyncio I/O."""
    if isinstance(op, RoundTrip):
        return await _async_round_trip(_client(conn, op), op)
    if isinstance(op, Invoke):
        value = op.function(*op.args, **op.kwargs)
        return await value if inspect.isawaitable(value) else value
    if isinstance(op, Subscribe):
        subscription = await async_subscribe(_client(conn, op), op.channels)
        subscriptions.append(subscription)
        return subscription
    if isinstance(op, Receive):
        return await cast(AsyncSubscription, op.subscription).receive(op.timeout)
    if isinstance(op, ScanKeys):
        return [key async for key in _client(conn, op).scan_iter(match=op.match, count=op.count)]
    if isinstance(op, Sleep):
        await asyncio.sleep(op.seconds)
        return None
    raise TypeError(f"Unknown op {op!r}")


async def _async_step(
    cursor: Cursor, op: Op, conn: Any, subscriptions: list[BaseSubscription]
) -> None:
    """Carry out ``op`` and hand the cursor its answer, or its error."""
    try:
        cursor.answer(await _async_answer(op, conn, subscriptions))
    except Exception as error:
        cursor.fail(error)


async def _async_close(cursor: Cursor, subscriptions: list[BaseSubscription]) -> None:
    cursor.close()
    for subscription in subscriptions:
        await cast(AsyncSubscription, subscription).close()


async def async_stream(steps: Steps[Any], conn: Any = None) -> AsyncIterator[Any]:
    """Drive ``steps`` with an asyncio client, yielding what it emits."""
    cursor = Cursor(steps)
    subscriptions: list[BaseSubscription] = []
    try:
        while (op := cursor.next()) is not None:
            if isinstance(op, Emit):
                yield op.value
                continue
            await _async_step(cursor, op, conn, subscriptions)
    finally:
        await _async_close(cursor, subscriptions)


async def async_run(steps: Steps[T], conn: Any = None) -> T:
    """Drive ``steps`` with an asyncio client and return its result.

    Not through ``async_stream``: the loop registers every async generator it starts (a weak
    set per loop, dearer on uvloop), a cost on each of the pool's many small operations.
    """
    result = _Result()
    cursor = Cursor(_capture(steps, result))
    subscriptions: list[BaseSubscription] = []
    try:
        while (op := cursor.next()) is not None:
            if isinstance(op, Emit):
                _refuse_emitted(op.value)
            await _async_step(cursor, op, conn, subscriptions)
    finally:
        await _async_close(cursor, subscriptions)
    return cast(T, result.value)
