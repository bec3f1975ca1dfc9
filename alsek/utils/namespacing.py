"""The reference key layout (SPEC §4), and the rules queue and task names must follow.

The key builders here describe the reference design's layout, which the public API still names
(``get_subnamespace`` for consumer subsets, ``get_message_signature`` for message locks). They
are **not** the keys the engine writes: the broker keeps every key of a queue under the queue's
Redis Cluster hash tag, built by ``alsek.core.broker.keys`` (and ``scripts/lib.lua``); see
``docs/redis-layout.md``.

These names carry no backend namespace; the backend adds ``"{namespace}:"`` in front. Queue and
task names become parts of keys, so :func:`validate_name` keeps out the characters that would
make two different names collide or break Redis Cluster hash tags.
"""

from __future__ import annotations

from typing import Protocol

from alsek.defaults import (
    DLQ_NAMESPACE_KEY,
    MESSAGES_NAMESPACE_KEY,
    PRIORITY_NAMESPACE_KEY,
    QUEUES_NAMESPACE_KEY,
    TASK_NAMESPACE_KEY,
)


class _MessageLike(Protocol):
    """What the key builders read from a message (a ``Message`` in practice)."""

    queue: str
    task_name: str
    uuid: str
    retries: int


_FORBIDDEN = {
    ":": "the key separator",
    "{": "a Redis Cluster hash-tag brace",
    "}": "a Redis Cluster hash-tag brace",
}


def validate_name(kind: str, value: object) -> str:
    """Return ``value`` if it is usable as a ``kind`` name (e.g. ``"queue"``), else raise.

    A name must be a non-empty ``str`` without ``:``, ``{``, ``}``, whitespace or control
    characters: each of those would either split a key in the wrong place or change which Redis
    Cluster slot the key lands in.

    Raises:
        ValueError: naming the kind, the value and the offending character.
    """
    if not isinstance(value, str):
        raise ValueError(f"{kind} name must be a str, got {type(value).__name__} {value!r}")
    if not value:
        raise ValueError(f"{kind} name must not be empty")
    for char in value:
        if char in _FORBIDDEN:
            reason = _FORBIDDEN[char]
        elif char.isspace():
            reason = "whitespace"
        elif not char.isprintable():
            reason = "a control character"
        else:
            continue
        raise ValueError(f"{kind} name {value!r} contains {char!r} ({reason})")
    return value


def get_subnamespace(queue: str | None = None, task_name: str | None = None) -> str:
    """``queues``, ``queues:{queue}`` or ``queues:{queue}:tasks:{task_name}``.

    Empty strings count as missing, like ``None``.

    Raises:
        ValueError: a task name is given without a queue (a task lives inside a queue).
    """
    if task_name and not queue:
        raise ValueError(f"task name {task_name!r} was given without a queue")
    if not queue:
        return QUEUES_NAMESPACE_KEY
    if not task_name:
        return f"{QUEUES_NAMESPACE_KEY}:{queue}"
    return f"{QUEUES_NAMESPACE_KEY}:{queue}:{TASK_NAMESPACE_KEY}:{task_name}"


def get_messages_namespace(message: _MessageLike) -> str:
    """``queues:{q}:tasks:{t}:messages``: where the message's siblings live."""
    return f"{get_subnamespace(message.queue, message.task_name)}:{MESSAGES_NAMESPACE_KEY}"


def get_message_name(message: _MessageLike) -> str:
    """``queues:{q}:tasks:{t}:messages:{uuid}``: the message's own key."""
    return f"{get_messages_namespace(message)}:{message.uuid}"


def get_message_signature(message: _MessageLike) -> str:
    """``...:messages:{uuid}:retry:{retries}``: one name per delivery attempt (used for locks)."""
    return f"{get_message_name(message)}:retry:{message.retries}"


def get_dlq_message_name(message: _MessageLike) -> str:
    """``dlq:queues:{q}:tasks:{t}:messages:{uuid}``: the dead-letter copy's key."""
    return f"{DLQ_NAMESPACE_KEY}:{get_message_name(message)}"


def get_priority_namespace(subnamespace: str) -> str:
    """``priority:{subnamespace}``: the priority index of a queue+task subnamespace."""
    return f"{PRIORITY_NAMESPACE_KEY}:{subnamespace}"


def get_priority_namespace_from_message(message: _MessageLike) -> str:
    """``priority:queues:{q}:tasks:{t}``: the priority index the message belongs to."""
    return get_priority_namespace(get_subnamespace(message.queue, message.task_name))
