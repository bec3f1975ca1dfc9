"""What a Redis outage is, and how long to pause between attempts while it lasts.

Every alsek operation is idempotent (scripts recognise a repeat of themselves), so an attempt
that failed because Redis was unreachable is simply made again, after a pause that doubles from
attempt to attempt up to a cap.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from alsek.core.steps.ops import RoundTrip, Sleep, Steps

#: Redis errors that mean "not reachable right now": the attempt is made again later.
REDIS_OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError)

#: Pauses (ms, first and cap) of a broker operation finishing a message: short, because the
#: message's lease runs out meanwhile.
FINISH_OUTAGE_PAUSES_MS = (50, 2000)
#: Pauses (ms, first and cap) of a consumer's claims: nothing is held, so no hurry.
CLAIM_OUTAGE_PAUSES_MS = (100, 5000)
#: Pauses (ms, first and cap) of a producer's submit sent again, and how long it keeps trying.
SUBMIT_OUTAGE_PAUSES_MS = (50, 1000)
SUBMIT_OUTAGE_PATIENCE_MS = 10_000


def outage_pause_ms(attempt: int, pauses: tuple[int, int]) -> int:
    """The pause (ms) after failed attempt number ``attempt`` (0 for the first)."""
    first, cap = pauses
    return int(min(first * 2**attempt, cap))


def sent_through_outage(
    op: RoundTrip, patience_ms: int, pauses: tuple[int, int]
) -> Steps[list[Any]]:
    """The replies of ``op``, sent again as is (same requests, same request ids) after each
    connection error until ``patience_ms`` have passed; then the error is raised.

    Only for requests that recognise a repeat of themselves: one that reached Redis before its
    reply was lost then changes nothing the second time.
    """
    deadline = time.monotonic() + patience_ms / 1000
    attempt = 0
    while True:
        try:
            replies: list[Any] = yield op
            return replies
        except REDIS_OUTAGE_ERRORS:
            if time.monotonic() >= deadline:
                raise
            yield Sleep(outage_pause_ms(attempt, pauses) / 1000)
            attempt += 1
