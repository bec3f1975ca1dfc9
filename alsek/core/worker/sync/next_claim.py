"""A warm child claims its own next message while work is backed up.

Without this, a child that finished its message tells the pool's process, which claims one
message for it (a round trip) and sends it down the pipe: the child waits for two pipe hops and
a claim it cannot overlap with anything, and with several children the pool's process claims
for each of them in turn. With it, a child that finished claims its next message itself, right
after its outcome was written, starts it at once, and tells the pool's process what it started
(``children``); the pool's process adopts it as its own run: it renews the lease, hears the
revocations and enforces the timeout as for a message it sent. The lease rule holds: the child
claims only once its slot is free, and claims one message, which it starts at once.

The children claim only while the last claim (the pool's or a child's) came back full: a
shared flag that a short claim clears and the pool's own full claims set, so that a quiet pool
makes no empty claims after every message; the pool's process then claims for idle children as
before, with its blocking wait. Its lease owner is the pool's own followed by ``:c`` and the
child's id (the script keeps one reply per owner for retries). A claim that meets a Redis error
leaves the child idle: the pool's process claims for it, and a message whose reply was lost
comes back when its lease expires, as every unacknowledged message does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from alsek.core.broker import ClaimSource
from alsek.core.broker.effects import ClaimStatus
from alsek.core.future.outcome import run_plan
from alsek.core.future.warm import SharedInt
from alsek.core.message import Message
from alsek.core.steps.outage import REDIS_OUTAGE_ERRORS
from alsek.core.worker.core import Admission, admission_of
from alsek.core.worker.loop import refusal_plan

log = logging.getLogger(__name__)

#: Refused messages (unknown task, too old, out of attempts) a child settles in a row before it
#: leaves the claiming to the pool's process.
MAX_REFUSALS_IN_A_ROW = 16


@dataclass(frozen=True)
class ChildClaims:
    """What a child needs to claim as the pool would (sent to it when it starts).

    Args:
        sources: the pool's queues (and tasks), in priority order.
        owner_id: the child's lease owner id.
        lease_ttl: the pool's lease (ms).
        status: the statuses the claim writes (``RUNNING``), as the pool's.
        max_runs: messages the child runs before it retires (``None``: no limit).
        backed_up: the flag the pool and its children share: whether the last claim came back
            full.
    """

    sources: tuple[ClaimSource, ...]
    owner_id: str
    lease_ttl: int
    status: ClaimStatus | None
    max_runs: int | None
    backed_up: SharedInt


def claim_next(claims: ChildClaims, tasks: dict[str, Any], runs: int) -> Message | None:
    """In a child that has finished its ``runs``-th message: its next message, claimed and
    admitted, or ``None`` (work is not backed up, the child retires, or nothing was there)."""
    if claims.max_runs is not None and runs >= claims.max_runs:
        return None
    broker = next(iter(tasks.values())).broker
    for _ in range(MAX_REFUSALS_IN_A_ROW):
        if not claims.backed_up.value:
            return None
        try:
            claim = broker.claim(
                list(claims.sources),
                1,
                owner_id=claims.owner_id,
                lease_ttl=claims.lease_ttl,
                status=claims.status,
            )
        except REDIS_OUTAGE_ERRORS as error:
            log.debug("Could not claim the next message (%s); the pool will", error)
            return None
        if not claim.messages:
            claims.backed_up.value = 0
            return None
        message: Message = claim.messages[0]
        admission = admission_of(tasks, message)
        if admission is Admission.START:
            return message
        run_plan(refusal_plan(admission, broker, tasks, message))
    return None
