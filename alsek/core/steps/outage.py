"""What a Redis outage is, and how long to pause between attempts while it lasts.

Every alsek operation is idempotent (scripts recognise a repeat of themselves), so an attempt
that failed because Redis was unreachable is simply made again, after a pause that doubles from
attempt to attempt up to a cap.
"""

from __future__ import annotations

import redis

#: Redis errors that mean "not reachable right now": the attempt is made again later.
REDIS_OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError)

#: Pauses (ms, first and cap) of a broker operation finishing a message: short, because the
#: message's lease runs out meanwhile.
FINISH_OUTAGE_PAUSES_MS = (50, 2000)
#: Pauses (ms, first and cap) of a consumer's claims: nothing is held, so no hurry.
CLAIM_OUTAGE_PAUSES_MS = (100, 5000)


def outage_pause_ms(attempt: int, pauses: tuple[int, int]) -> int:
    """The pause (ms) after failed attempt number ``attempt`` (0 for the first)."""
    first, cap = pauses
    return int(min(first * 2**attempt, cap))
