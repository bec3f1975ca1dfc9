"""What a task's function is called with: whether it asks for its message."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from alsek.core.message import Message


def expects_message(function: Callable[..., Any]) -> bool:
    """Whether ``function`` takes a ``message`` parameter, unannotated or annotated ``Message``.

    A string annotation (``from __future__ import annotations``) counts when it names
    ``Message``, qualified or not.
    """
    try:
        parameter = inspect.signature(function).parameters.get("message")
    except (TypeError, ValueError):  # builtins and the like have no signature to read
        return False
    if parameter is None:
        return False
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty or annotation is Message:
        return True
    if not isinstance(annotation, str):
        return False
    return annotation.strip("'\"").rsplit(".", 1)[-1] == "Message"
