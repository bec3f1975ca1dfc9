"""What a task's function is called with: whether it asks for its message, and whether a
message's arguments fit its signature (checked at ``generate()``, not in the worker)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from alsek.core.message import Message
from alsek.core.task.follow_ups import FAILURE_KWARGS, RESULT_KWARG


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


def readable_signature(function: Callable[..., Any]) -> inspect.Signature | None:
    """``function``'s signature, or ``None`` for those Python cannot read (some builtins)."""
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


def binding_problem(
    signature: inspect.Signature,
    args: Sequence[Any] | None,
    kwargs: Mapping[Any, Any] | None,
    passes_message: bool,
) -> str | None:
    """Why calling a function of ``signature`` with ``args`` and ``kwargs`` would raise
    ``TypeError``, or ``None`` when it would not.

    ``passes_message``: the worker adds ``message=`` unless ``kwargs`` has one (see
    ``expects_message``), so it counts as given.
    """
    given = dict(kwargs or {})
    if passes_message:
        given.setdefault("message", None)
    try:
        signature.bind(*(args or ()), **given)
    except TypeError as error:
        return str(error)
    return None


#: What each role a message is built for adds to its arguments when it runs: (positional,
#: keyword, what the role is, for errors).
ROLE_ARGUMENTS: dict[str, tuple[tuple[Any, ...], dict[str, Any], str]] = {
    "step": ((), {}, "a workflow step"),
    "piped": (
        (None,),
        {},
        "a pipeline step (the previous step's result comes last; pipe_ignore=True passes none)",
    ),
    "on_success": ((), {RESULT_KWARG: None}, "an on_success handler (it gets result=)"),
    "on_failure": (
        (),
        dict.fromkeys(FAILURE_KWARGS, ""),
        "an on_failure handler (it gets exception_type= and exception_message=)",
    ),
}


def fits_a_role(
    signature: inspect.Signature,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    expects_message: bool,
) -> bool:
    """Whether a message built with ``args``/``kwargs`` (and not submitted yet) runs with
    arguments that fit ``signature`` once some role adds its own."""
    given_args, given_kwargs = tuple(args or ()), dict(kwargs or {})
    return any(
        binding_problem(signature, given_args + extra, {**given_kwargs, **more}, expects_message)
        is None
        for extra, more, _ in ROLE_ARGUMENTS.values()
    )
