"""Readable ``repr`` strings for alsek's objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def _format_value(value: Any) -> str:
    if isinstance(value, (str, datetime)):
        return f"'{value}'"
    return repr(value) if not isinstance(value, type) else value.__name__


def auto_repr(obj: object, new_line_threshold: int | None = 5, **params: Any) -> str:
    """Build ``ClassName(k=v, ...)``; one parameter per line when there are many of them.

    Args:
        obj: the object whose class name leads the string.
        new_line_threshold: above this many parameters each goes on its own indented line;
            ``None`` never splits.
        **params: the parameters to show, in order.
    """
    name = obj.__class__.__name__
    pairs = [f"{key}={_format_value(value)}" for key, value in params.items()]
    if new_line_threshold is not None and len(pairs) > new_line_threshold:
        body = ",\n".join(f"    {pair}" for pair in pairs)
        return f"{name}(\n{body}\n)"
    return f"{name}({', '.join(pairs)})"
