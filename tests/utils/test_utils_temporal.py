"""utils.temporal: millisecond clocks that do not depend on the host timezone."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from alsek.utils.temporal import from_timestamp_ms, time_ms, utcnow_timestamp_ms


@pytest.fixture
def far_from_utc() -> Iterator[None]:
    """Run the test with the process timezone set well away from UTC."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"  # UTC+05:30, no daylight saving
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()


def test_utcnow_timestamp_ms_is_epoch_ms_even_outside_utc(far_from_utc: None) -> None:
    assert time.localtime().tm_gmtoff == 5 * 3600 + 30 * 60  # the zone really changed
    expected = datetime.now(timezone.utc).timestamp() * 1000
    assert abs(utcnow_timestamp_ms() - expected) < 1000


def test_utcnow_timestamp_ms_is_an_int() -> None:
    assert isinstance(utcnow_timestamp_ms(), int)


def test_time_ms_tracks_time_time() -> None:
    before = int(time.time() * 1000)
    value = time_ms()
    after = int(time.time() * 1000)
    assert isinstance(value, int)
    assert before <= value <= after


def test_from_timestamp_ms_gives_local_datetime() -> None:
    assert from_timestamp_ms(1_700_000_000_123) == datetime.fromtimestamp(1_700_000_000.123)


def test_from_timestamp_ms_round_trips_with_utcnow(far_from_utc: None) -> None:
    now = utcnow_timestamp_ms()
    assert abs(from_timestamp_ms(now).timestamp() * 1000 - now) < 1
