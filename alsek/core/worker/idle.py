"""An idle pool's wait for work and its next claim, in one round trip.

An idle pool blocks on its queues' wake lists (BLPOP) and, once a submit's wake token arrives,
claims. Sent as two round trips, a message waits for the pool to wake, then for a second round
trip before it can start. Pipelined behind the BLPOP, the claim runs on Redis the moment the
BLPOP returns (Redis holds a blocked client's next commands until then), so the message comes
back with the wake-up. When the BLPOP times out the claim runs all the same: an idle pool then
claims once per block (``MAX_BLOCK_MS``), an empty claim that keeps nothing in Redis.

The claim asks only for the slots that were free when the wait began; a pool's slots only free
up while it waits, so it never holds a lease on a message it cannot start.
"""

from __future__ import annotations

from typing import Any, TypeVar

from alsek.core.steps.ops import RoundTrip, Steps, call

A = TypeVar("A")
B = TypeVar("B")


def pipelined(first: Steps[A], second: Steps[B]) -> Steps[tuple[A, B]]:
    """Run two operations whose first round trips go out together, ``first``'s ahead, in one
    pipeline (not batched with other callers: it may block); then the rest of each, in turn.

    Raises:
        TypeError: either operation does not begin with a round trip.
    """
    head_a, head_b = next(first), next(second)
    if not isinstance(head_a, RoundTrip) or not isinstance(head_b, RoundTrip):
        raise TypeError("pipelined needs two operations that begin with a round trip")
    if head_a.atomic or head_b.atomic or head_a.replicas or head_b.replicas:
        raise TypeError("pipelined takes plain round trips (not atomic, no replicas)")
    try:
        replies = yield call(*head_a.requests, *head_b.requests)
    except BaseException:
        first.close()
        second.close()
        raise
    split = len(head_a.requests)
    a = yield from _resume(first, replies[:split])
    b = yield from _resume(second, replies[split:])
    return a, b


def _resume(steps: Steps[A], answer: Any) -> Steps[A]:
    """Hand ``steps`` the answer of its first op, then pass its other ops on."""
    error: BaseException | None = None
    while True:
        try:
            op = steps.throw(error) if error is not None else steps.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        error = None
        try:
            answer = yield op
        except Exception as failed:
            error = failed
