"""Human-friendly joining of names for log lines and error messages."""

from __future__ import annotations


def smart_join(items: list[str], limit: int | None = None, delimiter: str = ", ") -> str:
    """Join ``items`` the way a person would write them: ``"a, b and c"``.

    With more than ``limit`` items only the first ``limit`` are shown, followed by ``"..."``.

    Raises:
        ValueError: ``items`` is empty, or ``limit`` is below 1.
        TypeError: an item is not a string.
    """
    if not items:
        raise ValueError("smart_join() needs at least one item")
    if limit is not None and limit < 1:
        raise ValueError(f"smart_join() limit must be at least 1, got {limit!r}")
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"smart_join() items must be strings, got {item!r}")
    if len(items) == 1:
        return items[0]
    if limit is None or len(items) <= limit:
        return f"{delimiter.join(items[:-1])} and {items[-1]}"
    return f"{delimiter.join(items[:limit])}..."
