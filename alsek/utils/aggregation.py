"""Gather an object's constructor arguments back from its attributes."""

from __future__ import annotations

import inspect
from typing import Any


def gather_init_params(obj: Any, ignore: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Map each ``__init__`` parameter of ``obj`` (minus ``ignore``) to ``getattr(obj, name)``.

    This is how alsek objects are rebuilt in another process, so every class serialized this way
    stores each init parameter under an attribute of the same name.
    """
    skipped = set(ignore or ())
    parameters = inspect.signature(obj.__class__.__init__).parameters
    return {
        name: getattr(obj, name)
        for name, parameter in parameters.items()
        if name != "self"
        and name not in skipped
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }
