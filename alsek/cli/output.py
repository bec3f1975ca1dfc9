"""How the operator commands print: ``rich`` tables on a terminal (with ``alsek[cli]``), plain
aligned text otherwise, JSON with ``--json``.

Commands describe what they show as ``Table`` and ``Text`` blocks; ``Output`` renders them
once, or again in place every few seconds (``alsek info --interval``).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import click

#: ANSI: cursor home, clear the screen (plain text refreshed in place on a terminal).
CLEAR_SCREEN = "\x1b[H\x1b[2J"


@dataclass(frozen=True)
class Table:
    """Rows under a title; every cell already a string."""

    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    empty: str = "(none)"


@dataclass(frozen=True)
class Text:
    """Lines of text, optionally under a title."""

    lines: Sequence[str]
    title: str = ""


Block = Table | Text


def rich_available() -> bool:
    """Whether ``rich`` is installed (the ``alsek[cli]`` extra)."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def _plain_table(table: Table) -> list[str]:
    lines = [table.title] if table.title else []
    if not table.rows:
        return [*lines, f"  {table.empty}"]
    widths = [max(len(cell) for cell in column) for column in zip(table.headers, *table.rows)]

    def line(cells: Sequence[str]) -> str:
        return "  " + "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    return [*lines, line(table.headers), *(line(row) for row in table.rows)]


def plain(blocks: Sequence[Block]) -> str:
    """The blocks as plain text, a blank line between two."""
    parts = []
    for block in blocks:
        if isinstance(block, Table):
            parts.append("\n".join(_plain_table(block)))
        else:
            parts.append("\n".join([block.title, *block.lines] if block.title else block.lines))
    return "\n\n".join(parts)


def rich_renderable(blocks: Sequence[Block]) -> Any:
    """The blocks as one ``rich`` renderable."""
    from rich.console import Group
    from rich.table import Table as RichTable
    from rich.text import Text as RichText

    items: list[Any] = []
    for block in blocks:
        if isinstance(block, Table):
            table = RichTable(title=block.title or None, title_justify="left")
            for header in block.headers:
                table.add_column(header)
            for row in block.rows:
                table.add_row(*row)
            if not block.rows:
                table.caption = block.empty
            items.append(table)
        else:
            if block.title:
                items.append(RichText(block.title, style="bold"))
            items.append(RichText("\n".join(block.lines)))
    return Group(*items)


@dataclass
class Output:
    """Where a command prints: JSON, rich or plain (``rich``: on a terminal with rich)."""

    as_json: bool = False
    use_rich: bool = field(default_factory=lambda: sys.stdout.isatty() and rich_available())

    def json(self, payload: Any) -> None:
        """Print ``payload`` as JSON (values JSON cannot encode are printed as text)."""
        click.echo(json.dumps(payload, default=str, sort_keys=False))

    def show(self, blocks: Sequence[Block]) -> None:
        """Print the blocks once."""
        if self.use_rich:
            from rich.console import Console

            Console().print(rich_renderable(blocks))
        else:
            click.echo(plain(blocks))

    def refresh(
        self, interval: float, build: Callable[[], Sequence[Block]], payload: Callable[[], Any]
    ) -> None:
        """Show ``build()`` again every ``interval`` seconds, in place, until Ctrl-C (JSON:
        one document per line).

        Ctrl-C only asks the loop to end: the round trip in flight finishes first. (A
        ``KeyboardInterrupt`` raised inside the Redis client could leave its connection pool's
        lock held, and closing the pool afterwards would then wait forever.)
        """
        with _interrupt_as_event() as interrupted:
            if self.as_json:
                while not interrupted.is_set():
                    self.json(payload())
                    interrupted.wait(interval)
            elif self.use_rich:
                from rich.live import Live

                with Live(rich_renderable(build()), auto_refresh=False) as live:
                    while not interrupted.wait(interval):
                        live.update(rich_renderable(build()), refresh=True)
            else:
                clear = CLEAR_SCREEN if sys.stdout.isatty() else "\n"
                while not interrupted.is_set():
                    click.echo(clear + plain(build()))
                    interrupted.wait(interval)


@contextmanager
def _interrupt_as_event() -> Iterator[threading.Event]:
    """SIGINT sets the event instead of raising, for the ``with`` block (main thread only)."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set())
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


# -- formatting -------------------------------------------------------------------------------


def duration(ms: int | None) -> str:
    """A duration for people: ``850ms``, ``12s``, ``3m05s``, ``2h10m``, ``3d4h``; ``-`` if none."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    if seconds < 60:
        return f"{ms / 1000:.1f}s" if seconds < 10 else f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


def moment(ms: int | None) -> str:
    """A time of day (local), with the date when it is not today."""
    if ms is None:
        return "-"
    when = datetime.fromtimestamp(ms / 1000)
    if when.date() == datetime.now().date():
        return when.strftime("%H:%M:%S.%f")[:-3]
    return when.strftime("%Y-%m-%d %H:%M:%S")
