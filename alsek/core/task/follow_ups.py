"""What a message submits when it ends: its ``on_success`` / ``on_failure`` handlers.

``generate(..., on_success=message, on_failure=message, pipe_ignore=True)`` carries these
options in the message's ``metadata["alsek.options"]`` (beside ``max_age`` and its kin), the
handlers as message data. When the message succeeds, the worker submits its ``on_success``
handler with the ack, in the same round trip, with ``result=`` added to its kwargs; when it
fails for good, its ``on_failure`` handler with the fail, with ``exception_type=`` and
``exception_message=``. A handler's uuid is derived from its parent's and its role, so one
handler message may serve many parents and a repeated finish submits nothing new.

``pipe_ignore`` and ``piped`` belong to pipelines (``alsek.core.workflow``): a ``piped``
step receives the previous step's result as its last positional argument
(``build_callback_message``), unless it was built with ``pipe_ignore=True``. A step followed by
a group carries it as ``then_group`` (the group's record key, its members' data, and its
completion callback's): its ack submits the members (``next_group``).
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Mapping
from copy import deepcopy
from typing import Any

from alsek.core.message import Message, carried_options
from alsek.core.task.message_options import METADATA_KEY
from alsek.utils.temporal import utcnow_timestamp_ms

__all__ = [
    "FAILURE_KWARGS",
    "PIPED",
    "RESULT_KWARG",
    "WORKFLOW_OPTIONS",
    "carried_options",
    "check_unique",
    "failure_handler",
    "is_piped",
    "mark_piped",
    "next_group",
    "split_workflow_options",
    "success_handler",
]

#: ``generate``'s unique-job options, and its modes (BullMQ's): ``simple``, while a message with
#: the key is queued or running, a new submit yields to it; ``throttle``, one per key per
#: ``unique_ttl``; ``debounce``, a new submit replaces the one still waiting.
UNIQUE_OPTIONS = ("unique_key", "unique_ttl", "unique_mode")
UNIQUE_MODES = ("simple", "throttle", "debounce")
#: ``generate``'s options kept by this module (the rest go on to the broker).
WORKFLOW_OPTIONS = ("on_success", "on_failure", "pipe_ignore", *UNIQUE_OPTIONS)
#: Set by a pipeline on a step that receives the previous step's result.
PIPED = "piped"
#: The keyword argument an ``on_success`` handler gets.
RESULT_KWARG = "result"
#: The keyword arguments an ``on_failure`` handler gets.
FAILURE_KWARGS = ("exception_type", "exception_message")

_HANDLER_NAMESPACE = uuid_module.UUID("6f1c1f4e-7a59-4d5e-9a53-0c1d7b1e2a40")


def split_workflow_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``generate``'s ``**options`` as (the workflow options, encoded for the message's
    metadata; the rest).

    Raises:
        TypeError: a handler that is not a ``Message``, or a ``pipe_ignore`` not a bool.
    """
    encoded: dict[str, Any] = {}
    for role in ("on_success", "on_failure"):
        handler = options.get(role)
        if handler is None:
            continue
        if not isinstance(handler, Message):
            raise TypeError(
                f"{role} must be a Message (built with task.generate(..., submit=False)), "
                f"got {type(handler).__name__}"
            )
        encoded[role] = handler.data
    pipe_ignore = options.get("pipe_ignore", False)
    if not isinstance(pipe_ignore, bool):
        raise TypeError(f"pipe_ignore must be True or False, got {pipe_ignore!r}")
    if pipe_ignore:
        encoded["pipe_ignore"] = True
    unique = check_unique(options)
    if unique is not None:
        encoded["unique"] = unique
    rest = {name: value for name, value in options.items() if name not in WORKFLOW_OPTIONS}
    return encoded, rest


def check_unique(options: Mapping[str, Any]) -> dict[str, Any] | None:
    """``unique_key``, ``unique_ttl`` and ``unique_mode`` of ``generate``'s options, checked;
    ``None`` without a ``unique_key``.

    Raises:
        ValueError: an empty key, a ttl that is not an int of ms > 0 (required by
            ``throttle``), an unknown mode, or a ttl or mode without a key.
    """
    key, ttl = options.get("unique_key"), options.get("unique_ttl")
    mode = options.get("unique_mode", "simple")
    if key is None:
        if ttl is not None or "unique_mode" in options:
            raise ValueError("unique_ttl and unique_mode need a unique_key")
        return None
    if not isinstance(key, str) or not key:
        raise ValueError(f"unique_key must be a non-empty string, got {key!r}")
    if mode not in UNIQUE_MODES:
        raise ValueError(f"unique_mode must be one of {', '.join(UNIQUE_MODES)}, got {mode!r}")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        raise ValueError(f"unique_ttl must be an int of ms > 0, got {ttl!r}")
    if ttl is None and mode == "throttle":
        raise ValueError("unique_mode='throttle' needs a unique_ttl (ms): one per key per ttl")
    return {"key": key, "ttl": ttl, "mode": mode}


def is_piped(data: Mapping[str, Any]) -> bool:
    """Whether the message of ``data`` takes the previous step's result as an argument."""
    metadata = data.get("metadata") or {}
    carried = metadata.get(METADATA_KEY) or {}
    return bool(carried.get(PIPED)) and not carried.get("pipe_ignore")


def mark_piped(message: Message) -> Message:
    """``message`` as a pipeline step fed by the previous one (unless it ignores it)."""
    carried = dict(carried_options(message))
    if carried.get("pipe_ignore"):
        return message
    carried[PIPED] = True
    return message.update(metadata={**(message.metadata or {}), METADATA_KEY: carried})


def _handler(parent: Message, role: str, extra: Mapping[str, Any]) -> Message | None:
    data = carried_options(parent).get(role)
    if not data:
        return None
    handler = Message(**deepcopy(data))
    now = utcnow_timestamp_ms()  # its age (max_age) counts from its submit, as any message's
    return handler.update(
        uuid=str(uuid_module.uuid5(_HANDLER_NAMESPACE, f"{parent.uuid}:{role}")),
        kwargs={**handler.kwargs, **extra},
        previous_message_uuid=parent.uuid,
        created_at=now,
        updated_at=now,
    )


def success_handler(parent: Message, result: Any) -> Message | None:
    """The ``on_success`` message of ``parent``, with ``result=``; ``None`` without one."""
    return _handler(parent, "on_success", {RESULT_KWARG: result})


def failure_handler(parent: Message, exception: BaseException) -> Message | None:
    """The ``on_failure`` message of ``parent``, with the failure's type name and text;
    ``None`` without one."""
    kwargs = dict(zip(FAILURE_KWARGS, (type(exception).__name__, str(exception))))
    return _handler(parent, "on_failure", kwargs)


def next_group(parent: Message, result: Any) -> tuple[str, list[Message], Message | None] | None:
    """The group that follows ``parent`` in a pipeline, as (record key, members, each fed
    ``result`` unless it ignores it, completion callback); ``None`` when none follows."""
    then = carried_options(parent).get("then_group")
    if not then:
        return None
    members = []
    for data in then["members"]:
        member = deepcopy(data)
        if is_piped(member):
            member["args"] = (*(member.get("args") or ()), result)
        members.append(
            Message(**member).update(previous_result=result, previous_message_uuid=parent.uuid)
        )
    completion = then.get("completion")
    return then["key"], members, Message(**deepcopy(completion)) if completion else None
