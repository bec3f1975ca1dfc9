"""A task's claim-time limits: ``concurrency_limit``, ``concurrency_key`` and ``rate_limit``.

They are enforced where messages are claimed, inside the claim script (``limit_refusal`` and
``take_limits`` in ``broker/scripts/lib_limits.lua``): a message over a limit stays queued,
unclaimed and not counted as an attempt. So the script can read them, every message carries its
task's limits: at ``generate`` they go into ``metadata["alsek.limits"]`` (the concurrency key
computed there, from the message's arguments), and the broker's submit writes them into the
message's hash (the ``L`` effect). Carried per message, a change of a task's limits applies to
the messages submitted after it, and a message requeued from the dead-letter queue keeps its
own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from alsek.core.message import Message

__all__ = [
    "METADATA_KEY",
    "CarriedLimits",
    "RateLimit",
    "TaskLimits",
    "carried_limits",
    "check_task_limits",
    "parse_rate_limit",
    "with_limits",
]

#: Where a message carries its task's limits.
METADATA_KEY = "alsek.limits"

_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(ms|s|m|h|d)\s*$")


class RateLimit(NamedTuple):
    """At most ``limit`` claims of a task in any ``window_ms`` (a sliding window)."""

    limit: int
    window_ms: int


class TaskLimits(NamedTuple):
    """A task's checked limits (``None``: no limit of that kind)."""

    concurrency: int | None
    key: Callable[..., Any] | None
    rate: RateLimit | None


class CarriedLimits(NamedTuple):
    """The limits a message carries, as the claim script reads them (0: none of that kind)."""

    concurrency: int
    key: str
    rate: int
    window_ms: int


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return value


def parse_rate_limit(value: str | RateLimit) -> RateLimit:
    """``"100/m"`` (also ``/ms``, ``/s``, ``/h``, ``/d``, and ``"10/5s"``) or a ``RateLimit``.

    Raises:
        ValueError: anything else, or a limit or window that is not a positive int.
    """
    if isinstance(value, RateLimit):
        return RateLimit(
            _positive_int(value.limit, "rate_limit's limit"),
            _positive_int(value.window_ms, "rate_limit's window_ms"),
        )
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"rate_limit must be 'N/unit' (unit ms, s, m, h or d, e.g. '100/m' or '10/5s') or "
            f"RateLimit(limit, window_ms), got {value!r}"
        )
    count, multiple, unit = match.groups()
    window = int(multiple or 1) * _UNIT_MS[unit]
    return RateLimit(_positive_int(int(count), "rate_limit's count"), window)


def check_task_limits(
    concurrency_limit: int | None,
    concurrency_key: Callable[..., Any] | None,
    rate_limit: str | RateLimit | None,
) -> TaskLimits | None:
    """A task's limits, checked at its construction; ``None`` when it has none.

    Raises:
        ValueError: a ``concurrency_limit`` that is not an int > 0, a bad ``rate_limit``, or a
            ``concurrency_key`` without a ``concurrency_limit``.
        TypeError: a ``concurrency_key`` that is not callable.
    """
    if concurrency_limit is not None:
        _positive_int(concurrency_limit, "concurrency_limit")
    if concurrency_key is not None:
        if not callable(concurrency_key):
            raise TypeError(
                f"concurrency_key must be a callable of the message's arguments returning "
                f"its key, got {concurrency_key!r}"
            )
        if concurrency_limit is None:
            raise ValueError(
                "concurrency_key needs a concurrency_limit (the limit applies per key): give both"
            )
    rate = None if rate_limit is None else parse_rate_limit(rate_limit)
    if concurrency_limit is None and rate is None:
        return None
    return TaskLimits(concurrency_limit, concurrency_key, rate)


def _key_of(limits: TaskLimits, message: Message) -> str:
    """The message's concurrency key: ``concurrency_key(*args, **kwargs)``, a str or int."""
    if limits.key is None:
        return ""
    key = limits.key(*message.args, **message.kwargs)
    if isinstance(key, bool) or not isinstance(key, (str, int)) or key == "":
        raise ValueError(
            f"concurrency_key must return a non-empty str or an int for the arguments of "
            f"message {message.uuid}, got {key!r}"
        )
    return str(key)


def with_limits(message: Message, limits: TaskLimits | None) -> Message:
    """``message`` carrying ``limits`` in its metadata (its concurrency key computed now)."""
    if limits is None:
        return message
    carried = {
        "concurrency": limits.concurrency or 0,
        "key": _key_of(limits, message),
        "rate": limits.rate.limit if limits.rate else 0,
        "window_ms": limits.rate.window_ms if limits.rate else 0,
    }
    return message.update(metadata={**(message.metadata or {}), METADATA_KEY: carried})


def carried_limits(message: Message) -> CarriedLimits | None:
    """The limits ``message`` carries (``with_limits``), or ``None``."""
    metadata = message.metadata
    carried: Mapping[str, Any] | None = metadata.get(METADATA_KEY) if metadata else None
    if not carried:
        return None
    return CarriedLimits(
        int(carried.get("concurrency") or 0),
        str(carried.get("key") or ""),
        int(carried.get("rate") or 0),
        int(carried.get("window_ms") or 0),
    )
