"""The reference key layout (SPEC §4), and the rules queue and task names must follow.

The key builders here describe the reference design's layout, which the public API still names
(``get_subnamespace`` for consumer subsets, ``get_message_signature`` for message locks). They
are **not** the keys the engine writes: the broker keeps every key of a queue under the queue's
Redis Cluster hash tag, built by ``alsek.core.broker.keys`` (and ``scripts/lib_keys.lua``); see
``docs/redis-layout.md``.

These names carry no backend namespace; the backend adds ``"{namespace}:"`` in front. Namespaces,
queue and task names and message uuids become parts of keys, so :func:`validate_key_part` keeps
out the characters that would make two different names collide, break Redis Cluster hash tags or
be read as template markers.
"""

from __future__ import annotations

import re
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
#: The markers of the key templates the broker fills in (claim statuses).
_TEMPLATE_MARKER = re.compile(r"<(?:queue|task|uuid)>")
#: A forbidden character or a space: with ``str.isprintable`` (every other whitespace and
#: control character is unprintable), the check of a good name in C (every message, twice).
_FORBIDDEN_OR_SPACE = re.compile("[" + re.escape("".join(_FORBIDDEN)) + " ]")

#: Namespaces that would reach into other namespaces' keys: python-redis-lock prefixes every
#: lease with ``lock:`` (and its wake-ups with ``lock-signal:``).
RESERVED_NAMESPACES = frozenset({"lock", "lock-signal"})


def validate_key_part(what: str, value: object) -> str:
    """Return ``value`` if it may be one part of a Redis key (``what``: e.g. ``"queue name"``,
    ``"message uuid"``), else raise.

    It must be a non-empty ``str`` without ``:``, ``{``, ``}``, whitespace, control characters
    or a ``<queue>``, ``<task>`` or ``<uuid>`` marker: each of those would split a key in the
    wrong place (so that two different names share keys), change which Redis Cluster slot the
    key lands in, or be filled in as a marker of a key template.

    Raises:
        ValueError: naming what, the value and the offending character.
    """
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str, got {type(value).__name__} {value!r}")
    if not value:
        raise ValueError(f"{what} must not be empty")
    if value.isprintable() and _FORBIDDEN_OR_SPACE.search(value) is None and "<" not in value:
        return value  # nothing below could object: skip the loop that names the culprit
    for char in value:
        if char in _FORBIDDEN:
            reason = _FORBIDDEN[char]
        elif char.isspace():
            reason = "whitespace"
        elif not char.isprintable():
            reason = "a control character"
        else:
            continue
        raise ValueError(f"{what} {value!r} contains {char!r} ({reason})")
    marker = _TEMPLATE_MARKER.search(value)
    if marker:
        raise ValueError(
            f"{what} {value!r} contains {marker.group()!r} (a marker of the broker's key templates)"
        )
    return value


def validate_name(kind: str, value: object) -> str:
    """Return ``value`` if it is usable as a ``kind`` name (e.g. ``"queue"``), else raise
    ``ValueError`` (see :func:`validate_key_part`)."""
    return validate_key_part(f"{kind} name", value)


def validate_namespace(namespace: object) -> str:
    """Return ``namespace`` if it can prefix keys safely, else raise ``ValueError`` naming it.

    Besides the rules of every key part, a namespace holds no ``:``, so no namespace is a prefix
    of another's keys (``app`` and ``app:v2``), and it is not ``lock``/``lock-signal``, whose
    keys are every namespace's leases.
    """
    validate_key_part("namespace", namespace)
    if namespace in RESERVED_NAMESPACES:
        raise ValueError(
            f"namespace {namespace!r} is reserved (it prefixes every namespace's lease keys); "
            "choose another"
        )
    return str(namespace)


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
