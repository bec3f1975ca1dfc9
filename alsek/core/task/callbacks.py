"""Callback chains: folding a tuple of messages into one chain, and building its next message.

The parent message stores ``parse_callback(callback).data`` as its ``callback_message_data``;
once the parent succeeded, the worker submits ``build_callback_message(parent, result)``, whose
own ``callback_message_data`` carries the rest of the chain.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from alsek.core.message import Message
from alsek.core.task.follow_ups import is_piped


def parse_callback(callback: Message | tuple[Message, ...]) -> Message:
    """One message standing for a callback or a chain of callbacks.

    A tuple ``(a, b, c)`` becomes the chain a → b → c **in place**: ``b`` is nested in ``a``'s
    ``callback_message_data`` and ``c`` in ``b``'s. ``a`` is returned.

    Raises:
        TypeError: an item is not a ``Message``.
        ValueError: the tuple is empty.
        AttributeError: a message of the tuple already has a callback.
    """
    if isinstance(callback, Message):
        return callback
    callbacks = tuple(callback)
    if not callbacks:
        raise ValueError("callback is an empty tuple; give a message or a tuple of messages")
    for item in callbacks:
        if not isinstance(item, Message):
            raise TypeError(f"callback items must be Messages, got {type(item).__name__}")
        if item.callback_message_data:
            raise AttributeError(
                f"{item.summary} already has a callback; a tuple forms the chain by itself"
            )
    for i in range(len(callbacks) - 1, 0, -1):
        callbacks[i - 1].update(callback_message_data=callbacks[i].data)
    return callbacks[0]


def build_callback_message(parent: Message, result: Any) -> Message | None:
    """The next message of ``parent``'s chain, carrying ``result``; ``None`` without a chain.

    It gets ``previous_result=result``, ``previous_message_uuid=parent.uuid`` and the chain's
    ``progenitor_uuid`` (the parent's, or the parent itself when it started the chain); its own
    ``callback_message_data`` carries the rest of the chain. A pipeline's step (``piped``)
    also receives ``result`` as its last positional argument. Nothing is written.
    """
    if not parent.callback_message_data:
        return None
    data = deepcopy(parent.callback_message_data)
    if is_piped(data):
        data["args"] = (*(data.get("args") or ()), result)
    return Message(**data).update(
        previous_result=result,
        previous_message_uuid=parent.uuid,
        progenitor_uuid=parent.progenitor_uuid or parent.uuid,
    )
