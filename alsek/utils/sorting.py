"""Deterministic ordering of dictionaries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


def dict_sort(dictionary: dict[K, V], key: Callable[[K], Any] | None = None) -> dict[K, V]:
    """Return a new dict whose items are ordered by ``key(k)``, or by the keys themselves."""
    if not isinstance(dictionary, dict):
        raise TypeError(f"dict_sort() expects a dict, got {type(dictionary).__name__}")
    return {k: dictionary[k] for k in sorted(dictionary, key=key or _identity)}


def _identity(value: Any) -> Any:
    return value
