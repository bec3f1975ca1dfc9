"""``PoolLoop``: the loop of every pool that runs its own futures, written once as steps.

It starts with the middleware's ``worker_boot``. One pass: reap finished futures, renew leases
when due, claim at most as many messages as there are free slots, start them; when full, wait
for a slot; when idle, block on Redis until work arrives. Revocations stop running messages at
once. On shutdown the pool stops claiming, lets running messages finish within the grace period
(still renewing their leases), then stops the rest and releases them so they run again
elsewhere at once; the middleware's ``worker_shutdown`` ends it.

The loop yields each I/O call it needs as an ``Invoke`` op of the engine's step vocabulary;
``alsek.core.steps.drivers.run`` carries them out with blocking calls (``BaseWorkerPool``),
``async_run`` awaits those that return an awaitable (``AsyncBaseWorkerPool``). So the sync and
asyncio pools cannot drift apart.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from alsek.core.broker import Claim, ClaimSource
from alsek.core.consumer.base import MAX_BLOCK_MS
from alsek.core.future.outcome import (
    Plan,
    lost_plan,
    release_plan,
    too_old_plan,
    unknown_task_plan,
)
from alsek.core.message import Message
from alsek.core.middleware import hook_steps, hooks_of
from alsek.core.steps.ops import Steps, invoke
from alsek.core.steps.outage import REDIS_OUTAGE_ERRORS
from alsek.core.worker.core import Admission, PoolCore
from alsek.core.worker.idle import pipelined
from alsek.exceptions import RevokedError, TerminationError
from alsek.utils.temporal import utcnow_timestamp_ms

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long releasing a message at shutdown waits out a Redis outage before giving up (its
#: lease then expires and the message runs again anyway).
RELEASE_PATIENCE_MS = 2_000


def refusal_plan(
    admission: Admission, broker: Any, task_map: Mapping[str, Any], message: Message
) -> Plan:
    """What becomes of a claimed message that may not start (``admission`` is not
    ``START``): dead-lettered, or failed as lost or too old."""
    if admission is Admission.UNKNOWN_TASK:
        return unknown_task_plan(broker, message, task_map.values())
    task = task_map[message.task_name]
    if admission is Admission.EXHAUSTED:
        return lost_plan(task, message)
    return too_old_plan(task, message)


class PoolLoop(PoolCore):
    """The loop of a pool that claims for, and runs, futures of its own.

    Subclasses provide the I/O below: blocking methods in sync pools (``SlotWorkerPool``),
    coroutines in asyncio pools (``AsyncBaseWorkerPool``).
    """

    #: Whether the last claim took all there was (the next one waits for a wake-up first).
    _idle = False
    #: When work falls due in the queues of the last claim (its ``next_due``).
    _idle_due: int | None = None

    if TYPE_CHECKING:  # provided by the consumer the pool also is

        def claim(self, n: int = 1) -> Any: ...

        def wait_for_work(self, next_due: int | None) -> Any: ...

        def pause_for_outage(self, error: Exception) -> Any: ...

        all_queues: bool
        owner_id: str

        def _sources(self) -> list[ClaimSource]: ...

        def _queue_names(self) -> list[str]: ...

        def _next_request_id(self) -> str: ...

        def _claimed(self, messages: list[Message]) -> list[Message]: ...

        def _idle_timeout_ms(self, next_due: int | None) -> int: ...

        def _drive(self, steps: Steps[Any]) -> Any: ...  # steps on the broker's client

    # -- what subclasses provide ----------------------------------------------------------

    @abstractmethod
    def free_slots(self) -> int:
        """How many more messages the pool can start right now."""

    @abstractmethod
    def submit_message(self, message: Message) -> Any:
        """Start a future for ``message``; ``False`` if it cannot start after all."""

    @abstractmethod
    def prune(self) -> Any:
        """Reap finished futures (calling ``_finished``) and stop those past their timeout."""

    @abstractmethod
    def wait_for_slot(self, timeout_ms: int) -> Any:
        """Wait until a future finishes, or ``timeout_ms``."""

    @abstractmethod
    def stop_running(self, uuid: str, exception: type[BaseException]) -> Any:
        """Stop the running message ``uuid`` with ``exception``."""

    @abstractmethod
    def stop_all(self, exception: type[BaseException]) -> Any:
        """Stop every running future with ``exception``."""

    @abstractmethod
    def _run_plan(self, plan: Plan, give_up_after_ms: int = ...) -> Any:
        """Run an outcome plan (``give_up_after_ms``: how long to wait out an outage)."""

    def _let_started_begin(self) -> Any:
        """Let the messages just started take their first steps before the loop goes on
        (nothing to do where they run on threads of their own)."""

    # -- the loop -------------------------------------------------------------------------

    def _boot_steps(self) -> Steps[None]:
        """Get ready to claim: the middleware's ``worker_boot``."""
        yield from hook_steps(hooks_of(self.broker, "worker_boot"), self)

    def _engine_steps(self) -> Steps[None]:
        """Boot, then claim and run messages until told to stop; Redis outages are waited
        out."""
        yield from self._boot_steps()
        while self._can_run and not self.stop_signal.received:
            try:
                yield from self._pass_steps()
            except REDIS_OUTAGE_ERRORS as error:
                yield invoke(self.pause_for_outage, error)

    def _pass_steps(self) -> Steps[None]:
        yield invoke(self.prune)
        yield from self._maintain_steps()
        free = self.free_slots()
        if free <= 0:
            yield invoke(self.wait_for_slot, self._full_wait_ms())
            return
        gather_ms = self._gather_wait_ms(free)
        if gather_ms:
            yield invoke(self.wait_for_slot, gather_ms)
            return
        if self._pipelines_idle_wait():
            yield from self._claim_or_wait_steps(free)
            return
        claim = yield invoke(self.claim, free)
        self._note_claim(free, len(claim.messages))
        for message in claim.messages:
            yield from self._start_steps(message)
        if claim.messages:
            yield invoke(self._let_started_begin)
        if not claim.messages:
            yield invoke(self.wait_for_work, self._wake_by(claim.next_due))

    # -- an idle pool's wait and claim in one round trip (``idle``) ------------------------

    def _pipelines_idle_wait(self) -> bool:
        """Whether the idle wait can carry the claim: one BLPOP over the pool's own queues
        (not on a Cluster, where a script and a BLPOP of several queues span nodes, nor in
        the all-queues mode, whose queues are learnt from the registry as it goes, nor with
        ``wait_replicas``: a durable claim's WAIT must not wait behind a blocked BLPOP)."""
        broker = self.broker
        return not self.all_queues and not broker.one_queue_per_call and not broker.wait_replicas

    def _claim_or_wait_steps(self, free: int) -> Steps[None]:
        """Claim for ``free`` slots: at once while work came in at the last claim; once idle,
        block until a submit wakes the pool and claim on Redis as it wakes (``idle``)."""
        block_ms = self._idle_block_ms() if self._idle else 0
        self._idle = False  # until the claim answers (after an outage: claim again at once)
        if block_ms > 0:
            steps = self._wait_then_claim_steps(free, block_ms)
            woken, claim = yield invoke(self._drive, steps)
            if self.stop_signal.received:  # woken by the stop: give back what came with it
                yield from self._release_steps(claim.messages)
                return
        else:
            woken, claim = False, (yield invoke(self.claim, free))
        self._note_claim(free, len(claim.messages))
        for message in claim.messages:
            yield from self._start_steps(message)
        if claim.messages:
            yield invoke(self._let_started_begin)
        # A claim that found less than it asked for took all there was: what comes next
        # brings a wake token. A wake-up that found nothing (another pool took the message)
        # looks again at once, as a plain wait does.
        short = len(claim.messages) + claim.rejected < free
        self._idle = short and not (woken and not claim.messages)
        self._idle_due = claim.next_due

    def _idle_block_ms(self) -> int:
        """How long the next idle wait may block: until work or maintenance is due, within
        the backoff and ``MAX_BLOCK_MS`` (so a stop signal is seen)."""
        until = self._wake_by(self._idle_due) - utcnow_timestamp_ms()
        return min(until, self._idle_timeout_ms(None), MAX_BLOCK_MS)

    def _wait_then_claim_steps(self, n: int, block_ms: int) -> Steps[tuple[bool, Claim]]:
        """BLPOP on the wake lists with the claim pipelined behind it."""
        broker = self.broker
        wait = broker._wait_steps(self._queue_names(), block_ms, False)
        claim = broker._claim_steps(
            self._sources(),
            n,
            self.owner_id,
            self.lease_ttl,
            self.claim_status,
            self._next_request_id(),
        )
        woken, claimed = yield from pipelined(wait, claim)
        self._claimed(claimed.messages)
        return woken, claimed

    def _release_steps(self, messages: list[Message]) -> Steps[None]:
        for message in messages:
            yield invoke(self._run_plan, release_plan(self.broker, message), RELEASE_PATIENCE_MS)

    def _start_steps(self, message: Message) -> Steps[None]:
        admission = self._admit(message)
        if admission is not Admission.START:
            plan = refusal_plan(admission, self.broker, self._task_map, message)
            yield invoke(self._run_plan, plan)
        elif not (yield invoke(self.submit_message, message)):
            self._finished(message.uuid)
            yield invoke(self._run_plan, release_plan(self.broker, message))

    def _maintain_steps(self) -> Steps[None]:
        """Beat, renew the leases of running messages and check their revocations, when due."""
        beat = self._due_beat()
        if beat is not None:
            yield invoke(self._drive, beat)
        messages, renew, check = self._maintenance_due()
        if renew:
            renewed = yield invoke(self.broker.renew, messages, self.lease_ttl)
            self._report_renewals(messages, renewed)
        if check:
            revoked = yield invoke(self.broker.revoked, messages)
            for uuid in self._revoked_running(messages, revoked):
                yield from self._stop_revoked_steps(uuid)

    def _stop_revoked_steps(self, uuid: str) -> Steps[None]:
        """Stop ``uuid`` if the pool runs it (a revocation may name any message)."""
        if self._is_running(uuid):
            log.info("Stopping revoked message %s", uuid)
            yield invoke(self.stop_running, uuid, RevokedError)

    def _drain_steps(self) -> Steps[None]:
        """Let running messages finish within the grace period, renewing their leases; then
        stop the rest and release them.

        Cut short by the driver (a second stop signal unwinds it), it can run no more steps:
        the pool's shutdown then stops what still runs by itself.
        """
        self._can_run = False
        try:
            yield from self._grace_steps()
        except GeneratorExit:
            raise
        except BaseException:
            yield from self._shutdown_steps()
            raise
        yield from self._shutdown_steps()

    def _grace_steps(self) -> Steps[None]:
        deadline = self._grace_deadline()
        while self._draining(deadline):
            yield invoke(self.prune)
            try:
                yield from self._maintain_steps()
            except REDIS_OUTAGE_ERRORS as error:
                log.warning("Could not renew leases while stopping: %s", error)
            yield invoke(self.wait_for_slot, self._drain_wait_ms(deadline))

    def _shutdown_steps(self) -> Steps[None]:
        """Stop and release what still runs; then the middleware's ``worker_shutdown``."""
        yield invoke(self.stop_all, TerminationError)
        yield invoke(self.prune)
        for message in self._inflight_messages():
            yield invoke(self._run_plan, release_plan(self.broker, message), RELEASE_PATIENCE_MS)
            self._finished(message.uuid)
        yield from hook_steps(hooks_of(self.broker, "worker_shutdown"), self)
