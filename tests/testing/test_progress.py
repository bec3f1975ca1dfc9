"""The in-process worker's account of what runs (unit: no Redis needed)."""

from __future__ import annotations

from alsek.core.message import Message
from alsek.testing.progress import Progress


def test_the_end_of_an_attempt_does_not_hide_the_next_one_already_started() -> None:
    # A retry without backoff is claimed again, and starts, before the pool hears that the
    # first attempt ended: join() must still see the second attempt running.
    first = Message("charge", queue="pay", uuid="u-1")
    second = Message("charge", queue="pay", uuid="u-1", retries=1)
    progress = Progress()
    progress.started(first)
    progress.started(second)
    progress.finished(first)
    assert progress.running() == [second]
    progress.finished(second)
    assert progress.running() == []
