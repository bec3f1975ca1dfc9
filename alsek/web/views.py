"""How values look on the dashboard's pages: times, ages, durations, and task arguments or
results as indented JSON text (always rendered as escaped data, never as markup)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from alsek.cli.output import duration

__all__ = ["Page", "ago", "duration", "link", "pretty", "when"]


def when(ms: int | None) -> str:
    """A moment as UTC date and time to the second; ``-`` when unknown."""
    if ms is None:
        return "-"
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(ms: int | None, now_ms: int) -> str:
    """How long before ``now_ms`` (``in 3m05s`` when after it); ``-`` when unknown."""
    if ms is None:
        return "-"
    if ms > now_ms:
        return f"in {duration(ms - now_ms)}"
    return f"{duration(now_ms - ms)} ago"


def pretty(value: Any) -> str:
    """``value`` as indented JSON (``repr`` for what JSON cannot hold), for a ``<pre>``."""
    try:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def link(root: str, path: str, *segments: str, **query: Any) -> str:
    """A link inside the dashboard: ``root`` (where it is mounted), ``path``, each of
    ``segments`` quoted as one path segment, then ``query`` (``None`` values left out)."""
    url = root + path + "".join("/" + quote(segment, safe="") for segment in segments)
    params = {key: value for key, value in query.items() if value not in (None, "")}
    return f"{url}?{urlencode(params)}" if params else url


@dataclass(frozen=True)
class Page:
    """Where a paged listing is: page ``number`` (from 1) of ``size`` items, ``total`` in all
    (``None`` when not known)."""

    number: int
    size: int
    total: int | None

    @property
    def offset(self) -> int:
        """Items before this page."""
        return (self.number - 1) * self.size

    @property
    def last(self) -> int:
        """The last page's number (1 when nothing is known)."""
        if not self.total:
            return 1
        return (self.total + self.size - 1) // self.size

    def has_next(self, shown: int) -> bool:
        """Whether a next page exists after showing ``shown`` items here."""
        if self.total is None:
            return shown >= self.size
        return self.number < self.last
