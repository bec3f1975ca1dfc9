"""Clock readings in integer milliseconds, alsek's unit for every timestamp."""

from __future__ import annotations

import time
from datetime import datetime


def utcnow_timestamp_ms() -> int:
    """Milliseconds since the Unix epoch.

    Epoch time is the same on every host whatever its timezone, which matters because
    ``ready_at``, ``created_at`` and timeouts compare readings taken on different machines.
    """
    return int(time.time() * 1000)


def time_ms() -> int:
    """Milliseconds since the epoch, for measuring waits."""
    return int(time.time() * 1000)


def from_timestamp_ms(timestamp: int) -> datetime:
    """Turn a millisecond timestamp into a local-time ``datetime`` (for display only)."""
    return datetime.fromtimestamp(timestamp / 1000)
