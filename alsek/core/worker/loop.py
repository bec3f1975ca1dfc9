"""``PoolLoop``: the loop of every pool that runs its own futures, written once as steps.

One pass: reap finished futures, renew leases when due, claim at most as many messages as there
are free slots, start them; when full, wait for a slot; when idle, block on Redis until work
arrives. Revocations stop running messages at once. On shutdown the pool stops claiming, lets
running messages finish within the grace period (still renewing their leases), then stops the
rest and releases them so they run again elsewhere at once.

The loop yields each I/O call it needs as a ``Step``; ``drive`` runs the steps with blocking
calls (``BaseWorkerPool``), ``drive_async`` awaits those that return an awaitable
(``AsyncBaseWorkerPool``). So the sync and asyncio pools cannot drift apart.
"""

from __future__ import annotations

import inspect
import logging
from abc import abstractmethod
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from alsek.core.future.outcome import Plan, lost_plan, release_plan, unknown_task_plan
from alsek.core.message import Message
from alsek.core.steps.outage import REDIS_OUTAGE_ERRORS
from alsek.core.worker.core import Admission, PoolCore
from alsek.exceptions import RevokedError, TerminationError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long releasing a message at shutdown waits out a Redis outage before giving up (its
#: lease then expires and the message runs again anyway).
RELEASE_PATIENCE_MS = 2_000


@dataclass(frozen=True)
class Step:
    """One I/O call the loop needs: ``function(*args)``; its result is sent back."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()


Steps = Generator[Step, Any, T]


def call(function: Callable[..., Any], *args: Any) -> Step:
    """The step calling ``function(*args)``."""
    return Step(function, args)


class _Run(Generic[T]):
    """Where a run of steps stands: what goes into it next (a call's result, or its error,
    raised where the call was yielded) and, once it is done, its result."""

    def __init__(self, steps: Steps[T]) -> None:
        self._steps = steps
        self._value: Any = None
        self._error: BaseException | None = None
        self.result: T

    def advance(self) -> Step | None:
        """The next step; ``None`` once the steps are done (see ``result``)."""
        try:
            if self._error is None:
                step = self._steps.send(self._value)
            else:
                step = self._steps.throw(self._error)
        except StopIteration as done:
            self.result = done.value
            return None
        self._value, self._error = None, None
        return step

    def answer(self, value: Any) -> None:
        self._value = value

    def fail(self, error: BaseException) -> None:
        self._error = error


def drive(steps: Steps[T]) -> T:
    """Run ``steps`` with blocking calls."""
    run = _Run(steps)
    while (step := run.advance()) is not None:
        try:
            run.answer(step.function(*step.args))
        except BaseException as error:  # handed to the steps, which decide
            run.fail(error)
    return run.result


async def drive_async(steps: Steps[T]) -> T:
    """Run ``steps``, awaiting the calls that return an awaitable."""
    run = _Run(steps)
    while (step := run.advance()) is not None:
        try:
            value = step.function(*step.args)
            run.answer(await value if inspect.isawaitable(value) else value)
        except BaseException as error:  # handed to the steps, which decide
            run.fail(error)
    return run.result


class PoolLoop(PoolCore):
    """The loop of a pool that claims for, and runs, futures of its own.

    Subclasses provide the I/O below: blocking methods in sync pools (``SlotWorkerPool``),
    coroutines in asyncio pools (``AsyncBaseWorkerPool``).
    """

    if TYPE_CHECKING:  # provided by the consumer the pool also is

        def claim(self, n: int = 1) -> Any: ...

        def wait_for_work(self, next_due: int | None) -> Any: ...

        def pause_for_outage(self, error: Exception) -> Any: ...

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

    # -- the loop -------------------------------------------------------------------------

    def _engine_steps(self) -> Steps[None]:
        """Claim and run messages until told to stop; Redis outages are waited out."""
        while self._can_run and not self.stop_signal.received:
            try:
                yield from self._pass_steps()
            except REDIS_OUTAGE_ERRORS as error:
                yield call(self.pause_for_outage, error)

    def _pass_steps(self) -> Steps[None]:
        yield call(self.prune)
        yield from self._maintain_steps()
        free = self.free_slots()
        if free <= 0:
            yield call(self.wait_for_slot, self._full_wait_ms())
            return
        gather_ms = self._gather_wait_ms(free)
        if gather_ms:
            yield call(self.wait_for_slot, gather_ms)
            return
        claim = yield call(self.claim, free)
        self._note_claim(free, len(claim.messages))
        for message in claim.messages:
            yield from self._start_steps(message)
        if not claim.messages:
            yield call(self.wait_for_work, self._wake_by(claim.next_due))

    def _start_steps(self, message: Message) -> Steps[None]:
        admission = self._admit(message)
        if admission is Admission.UNKNOWN_TASK:
            yield call(self._run_plan, unknown_task_plan(self.broker, message, self.tasks))
        elif admission is Admission.EXHAUSTED:
            task = self._task_map[message.task_name]
            yield call(self._run_plan, lost_plan(task, message))
        elif not (yield call(self.submit_message, message)):
            self._finished(message.uuid)
            yield call(self._run_plan, release_plan(self.broker, message))

    def _maintain_steps(self) -> Steps[None]:
        """Renew the leases of running messages and check their revocations, when due."""
        messages, renew, check = self._maintenance_due()
        if renew:
            renewed = yield call(self.broker.renew, messages, self.lease_ttl)
            self._report_renewals(messages, renewed)
        if check:
            revoked = yield call(self.broker.revoked, messages)
            for uuid in self._revoked_running(messages, revoked):
                yield from self._stop_revoked_steps(uuid)

    def _stop_revoked_steps(self, uuid: str) -> Steps[None]:
        """Stop ``uuid`` if the pool runs it (a revocation may name any message)."""
        if self._is_running(uuid):
            log.info("Stopping revoked message %s", uuid)
            yield call(self.stop_running, uuid, RevokedError)

    def _drain_steps(self) -> Steps[None]:
        """Let running messages finish within the grace period, renewing their leases; then
        stop the rest and release them."""
        self._can_run = False
        try:
            deadline = self._grace_deadline()
            while self._draining(deadline):
                yield call(self.prune)
                try:
                    yield from self._maintain_steps()
                except REDIS_OUTAGE_ERRORS as error:
                    log.warning("Could not renew leases while stopping: %s", error)
                yield call(self.wait_for_slot, self._drain_wait_ms(deadline))
        finally:
            yield call(self.stop_all, TerminationError)
            yield call(self.prune)
            for message in self._inflight_messages():
                yield call(self._run_plan, release_plan(self.broker, message), RELEASE_PATIENCE_MS)
                self._finished(message.uuid)
