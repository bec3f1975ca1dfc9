"""Dictionary helpers for the message's metadata and ephemeral state."""

from __future__ import annotations

from copy import deepcopy
from typing import Any


def dict_merge_update_into_origin(
    origin: dict[Any, Any],
    update: dict[Any, Any],
    inplace: bool = False,
) -> dict[Any, Any]:
    """Add the keys of ``update`` to ``origin``, refusing to overwrite any existing key.

    Refusing is the point: metadata written by one party must not be silently replaced by another.

    Args:
        origin: the dictionary to extend.
        update: the new keys and values.
        inplace: change ``origin`` itself instead of a deep copy of it.

    Raises:
        TypeError: either argument is not a dict.
        KeyError: a key of ``update`` is already in ``origin`` (nothing is changed then).
    """
    for label, value in (("origin", origin), ("update", update)):
        if not isinstance(value, dict):
            raise TypeError(f"{label} must be a dict, got {type(value).__name__}")
    clashes = [key for key in update if key in origin]
    if clashes:
        raise KeyError(f"Key(s) already present and not overwritten: {clashes!r}")
    target = origin if inplace else deepcopy(origin)
    target.update(update)
    return target
