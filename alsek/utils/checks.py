"""Small predicates shared by the sync and async halves of alsek."""

from __future__ import annotations

import inspect
from collections.abc import Collection
from typing import Any


def await_required(obj: Any) -> bool:
    """Tell whether ``obj`` must be awaited (or iterated with ``async for``) to get a value.

    True for a coroutine, an async generator *function*, or anything with ``__await__``; this is
    how code that accepts either a plain value or an awaitable decides what to do with it.
    """
    return inspect.iscoroutine(obj) or inspect.isasyncgenfunction(obj) or hasattr(obj, "__await__")


def has_duplicates(itera: Collection[Any]) -> bool:
    """Tell whether any item appears more than once.

    Hashable items are compared through a set (O(n)); unhashable ones fall back to pairwise
    equality, so any collection works.
    """
    try:
        return len(set(itera)) != len(itera)
    except TypeError:
        seen: list[Any] = []
        for item in itera:
            if item in seen:
                return True
            seen.append(item)
        return False
