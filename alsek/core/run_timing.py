"""How long a run of a message took, stamped on the message where it runs.

The future that runs a message stamps the start and the end of the run in its
``ephemeral_state`` (in memory, never stored), and whoever finishes the message reads the
length from there: the broker passes it to the script that counts the outcome in the
throughput history (``Admin.throughput``), and the metrics middleware times the run with the
same figures. A stop (timeout, revocation, shutdown) ends a run without an end stamp: its
length runs to the moment it is read. A message that never ran has no length.
"""

from __future__ import annotations

import time

from alsek.core.message import Message
from alsek.utils.temporal import utcnow_timestamp_ms

__all__ = ["mark_run_ended", "mark_run_started", "run_ms", "run_started_at_ms"]

_STARTED = "alsek.run.started"  # time.monotonic() at the start
_STARTED_AT = "alsek.run.started_at_ms"  # wall clock (ms since the epoch) at the start
_ENDED = "alsek.run.ended"  # time.monotonic() at the end


def mark_run_started(message: Message) -> None:
    """Stamp the start of a run of ``message`` (again for each attempt)."""
    state = message.ephemeral_state
    state[_STARTED] = time.monotonic()
    state[_STARTED_AT] = utcnow_timestamp_ms()
    state.pop(_ENDED, None)


def mark_run_ended(message: Message) -> None:
    """Stamp the end of the run of ``message`` (before its outcome is written)."""
    message.ephemeral_state[_ENDED] = time.monotonic()


def run_ms(message: Message) -> int | None:
    """How long the run of ``message`` took, in ms (until now if it has not ended);
    ``None`` when it never started here."""
    state = message.ephemeral_state
    started = state.get(_STARTED)
    if started is None:
        return None
    ended = state.get(_ENDED, time.monotonic())
    return max(int((ended - started) * 1000), 0)


def run_started_at_ms(message: Message) -> int | None:
    """When the run of ``message`` started (ms since the epoch); ``None``: it never did."""
    started_at = message.ephemeral_state.get(_STARTED_AT)
    return int(started_at) if started_at is not None else None
