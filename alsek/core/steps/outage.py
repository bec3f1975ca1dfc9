"""What a Redis outage is, and how long to pause between attempts while it lasts.

Every alsek operation is idempotent (scripts recognise a repeat of themselves), so an attempt
that failed because Redis was unreachable is simply made again, after a pause that doubles from
attempt to attempt up to a cap.

Some refusals mean the same as a dropped connection: the server cannot serve the request *now*
(a replica after a failover, a cluster that lost a master, a slot half-way through a migration,
a server loading its data, a blocking call unblocked by a role change). The sender raises them
as ``RedisUnavailableError``, so they are waited out like any outage, never taken for the
operation's own answer.

A script that declares every key it touches is refused before it starts while its keys are
split between the two nodes of a slot half-way through a migration (TRYAGAIN), or sent on by
ASK; redis-py tries again a few times, then gives up with ``ClusterError`` ("TTL exhausted"),
which is waited out here like any outage. A script that meets an undeclared key the node no
longer serves is refused at that command, after its earlier writes: the scripts that still
have such keys are listed in ``docs/redis-layout.md``.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    ReadOnlyError,
    RedisClusterUnreachableError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)

from alsek.core.steps.ops import RoundTrip, Sleep, Steps


class RedisUnavailableError(redis.ConnectionError):
    """Redis refused a request because it cannot serve it right now (see the module)."""


#: Redis errors that mean "not reachable right now": the attempt is made again later.
REDIS_OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError)

#: Replies (errors) and client errors that mean "this server cannot serve this now".
_UNAVAILABLE_REPLIES = (ReadOnlyError, ClusterDownError, TryAgainError, ClusterError)
_UNAVAILABLE_PREFIXES = ("UNBLOCKED", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN")
#: A script touching a key its node no longer serves (a slot half-way through a migration):
#: Valkey's words, and Redis 7's.
_UNAVAILABLE_FRAGMENTS = ("access a non local key", "a key that doesn't belong to the slot")
CLUSTER_UNAVAILABLE_ERRORS = (SlotNotCoveredError, RedisClusterUnreachableError, ClusterError)

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


def is_unavailable_reply(reply: Any) -> bool:
    """Whether ``reply`` is a refusal that means "not now" rather than an answer."""
    if isinstance(reply, _UNAVAILABLE_REPLIES):
        return True
    if not isinstance(reply, ResponseError):
        return False
    text = str(reply)
    return text.startswith(_UNAVAILABLE_PREFIXES) or any(f in text for f in _UNAVAILABLE_FRAGMENTS)


def raise_if_unavailable(replies: list[Any]) -> list[Any]:
    """``replies``, unless one says the server cannot serve now: then raise that as an outage."""
    for reply in replies:
        if is_unavailable_reply(reply):
            raise RedisUnavailableError(f"Redis cannot serve the request now: {reply}") from reply
    return replies


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
