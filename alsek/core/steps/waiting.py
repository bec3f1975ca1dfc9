"""Steps for waiting on Redis: for a publish, for a consistent snapshot, with deadlines.

Shared by the status tracker (``wait_for``, ``listen_to_updates``), the result store
(``get(timeout=...)``) and ``ResultPool``: each waits for a publish instead of polling, and
gives up at its deadline or when the process is told to stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from alsek.core.steps.hub import (
    RESYNC,
    SUBSCRIBE_TIMEOUT_SECONDS,
    SYNC_TOKEN_PREFIX,
    BaseSubscription,
    Item,
    SyncToken,
)
from alsek.core.steps.ops import Cursor, Emit, Receive, Script, ScriptCall, Sleep, Steps, batched
from alsek.utils.system import stop_requested

#: Longest uninterrupted wait of an operation that gives up when the process is told to stop.
STOP_CHECK_SECONDS = 0.25

#: Read a key and mark the read's place in a channel's stream (see ``hub``): KEYS[1] the key,
#: ARGV[1] the channel, ARGV[2] the sync token payload.
SNAPSHOT_SCRIPT = Script.from_text(
    "snapshot",
    """
local value = redis.call('GET', KEYS[1])
redis.call(PUBLISH, ARGV[1], ARGV[2])
return value
""",
)


def snapshot_steps(subscription: BaseSubscription, key: str, channel: str) -> Steps[str | None]:
    """The value of ``key``, once every publish on ``channel`` before the read was received.

    Items received before the sync token describe writes the snapshot already holds, so they
    are dropped. A ``RESYNC`` meanwhile may have cost the token: read again.
    """
    while True:
        token = subscription.new_token()
        request = ScriptCall(SNAPSHOT_SCRIPT, (key,), (channel, SYNC_TOKEN_PREFIX + token))
        [raw] = yield batched(request)
        while True:
            item = yield Receive(subscription, SUBSCRIBE_TIMEOUT_SECONDS)
            if item is None:
                raise TimeoutError(f"Redis did not deliver the sync token on {channel!r}")
            if item == SyncToken(token):
                return None if raw is None else str(raw)
            if item is RESYNC:
                break


def wait_steps(
    subscription: BaseSubscription | None,
    deadline: float | None,
    poll_seconds: float = STOP_CHECK_SECONDS,
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
        item: Item | None = yield Receive(subscription, pause)
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

    Returns ``(last value emitted, accepted)``; the emitted values are not passed on. Every
    other op goes to the driver, and its answer (or error) back to the operation.
    """
    cursor = Cursor(steps)
    last: Any = None
    try:
        while (op := cursor.next()) is not None:
            if isinstance(op, Emit):
                last = op.value
                if accept(last):
                    return last, True
                continue
            try:
                cursor.answer((yield op))
            except Exception as error:
                cursor.fail(error)
        return last, False
    finally:
        cursor.close()
