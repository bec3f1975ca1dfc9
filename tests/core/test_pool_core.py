"""The decisions of every worker pool (``PoolCore``, strung together by ``PoolLoop``), stepped in
memory: slots, claim sizes, admission, lease renewals, revocations, timeouts, shutdown.

``MemoryPool`` is a pool whose I/O is a list: its consumer hands out messages from a list, its
broker answers renewals and revocation checks from sets, its futures are plain records, and
waiting moves a fake clock forward instead of sleeping. It runs the real loop with the real
blocking driver; the tests read what it did.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from alsek.core.broker import Claim
from alsek.core.message import Message
from alsek.core.steps.drivers import async_run as drive_async
from alsek.core.steps.drivers import run as drive
from alsek.core.steps.ops import Steps
from alsek.core.steps.ops import invoke as call
from alsek.core.worker import core
from alsek.core.worker.core import REVOCATION_CHECK_MS
from alsek.core.worker.loop import PoolLoop
from alsek.exceptions import RevokedError, TerminationError, WorkerLostError
from alsek.utils.parsing import ExceptionDetails, get_exception_name

LEASE_TTL = 3_000
RENEW_EVERY = LEASE_TTL // 3
SLOT_WAIT = 50
GRACE = 2_000


class FakeClock:
    """Both clocks of ``PoolCore`` (monotonic and wall), moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(core, "monotonic_ms", fake)
    monkeypatch.setattr(core, "utcnow_timestamp_ms", fake)
    return fake


class StubTask:
    """What a pool reads of a task."""

    _alsek_task_kind = "sync"

    def __init__(self, name: str, broker: Any, max_retries: int = 3) -> None:
        self.name = name
        self.broker = broker
        self.queue = "q"
        self.mechanism = "thread"
        self.max_retries = max_retries
        self.status_tracker = None

    def running_claim_status(self) -> None:
        return None

    def age_beyond_max(self, message: Message) -> int | None:
        return None

    def retry_verdict(self, message: Message, exception: BaseException) -> bool:
        return message.retries < self.max_retries


@dataclass
class MemoryBroker:
    """Renewals and revocation checks answered from sets; every call recorded."""

    lost: set[str] = field(default_factory=set)
    revoked_uuids: set[str] = field(default_factory=set)
    outage: bool = False
    calls: list[tuple[str, list[str]]] = field(default_factory=list)

    def renew(self, messages: list[Message], lease_ttl: int) -> list[bool]:
        self.calls.append(("renew", [m.uuid for m in messages]))
        if self.outage:
            raise redis.ConnectionError("Redis is down")
        return [m.uuid not in self.lost for m in messages]

    def revoked(self, messages: list[Message]) -> list[bool]:
        self.calls.append(("revoked", [m.uuid for m in messages]))
        return [m.uuid in self.revoked_uuids for m in messages]


@dataclass
class FakeFuture:
    """A running message as a pool sees it; its timeout is read off the fake clock."""

    message: Message
    created_at: int
    clock: FakeClock
    complete: bool = False

    @property
    def time_limit_exceeded(self) -> bool:
        return not self.complete and self.clock.now - self.created_at > self.message.timeout


class StopFlag:
    """The consumer's stop signal."""

    received = False


class MemoryPool(PoolLoop):
    """A pool of ``capacity`` slots whose I/O happens in memory (see the module docstring)."""

    task_kind = "sync"
    registers = False  # no worker registry in memory

    def __init__(self, clock: FakeClock, capacity: int = 4, **options: Any) -> None:
        self.clock = clock
        self.n_slots = capacity
        self.memory_broker = MemoryBroker()
        self.queue: list[Message] = []
        self.next_due: int | None = None
        self.futures: dict[str, FakeFuture] = {}
        self.refuse_submit = False
        self.finish_after_ms: dict[str, int] = {}  # uuid -> run length; forever when absent
        self.did: list[tuple[Any, ...]] = []
        tasks = [StubTask("add", self.memory_broker)]
        super().__init__(
            mechanism="thread",
            tasks=tasks,
            slot_wait_interval=SLOT_WAIT,
            lease_ttl=LEASE_TTL,
            **{"grace_period": GRACE, **options},
        )

    def _init_consumer(self, **options: Any) -> None:
        self.broker = options["broker"]
        self.subset = options["subset"]
        self.lease_ttl = options["lease_ttl"]
        self.stop_flag = StopFlag()
        self.stop_signal = self.stop_flag  # type: ignore[assignment]

    def _pipelines_idle_wait(self) -> bool:
        return False  # in memory: a claim, then a wait for work, as separate steps

    # -- the consumer ---------------------------------------------------------------------

    def claim(self, n: int = 1) -> Claim:
        self.did.append(("claim", n))
        taken, self.queue = self.queue[:n], self.queue[n:]
        return Claim(taken, None if taken else self.next_due, 0)

    def wait_for_work(self, next_due: int | None) -> None:
        self.did.append(("wait_for_work", next_due))
        self.stop_flag.received = True  # one idle pass is enough for these tests

    def pause_for_outage(self, error: Exception) -> None:
        self.did.append(("pause_for_outage", type(error).__name__))
        self.clock.advance(100)

    # -- the slots ------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self.n_slots

    def free_slots(self) -> int:
        return self.n_slots - len(self.futures)

    def submit_message(self, message: Message) -> bool:
        self.did.append(("submit", message.uuid))
        if self.refuse_submit:
            return False
        future = FakeFuture(message, self.clock.now, self.clock)
        self.futures[message.uuid] = future
        self._watch_timeout(future)
        return True

    def prune(self) -> None:
        for future in self._overdue(self.futures.values()):
            self.did.append(("timed out", future.message.uuid))
        for uuid, future in list(self.futures.items()):
            run_for = self.finish_after_ms.get(uuid)
            if run_for is not None and self.clock.now - future.created_at >= run_for:
                del self.futures[uuid]
                self._finished(uuid)

    def wait_for_slot(self, timeout_ms: int) -> None:
        self.did.append(("wait_for_slot", timeout_ms))
        self.clock.advance(timeout_ms)

    def stop_running(self, uuid: str, exception: type[BaseException]) -> None:
        self.did.append(("stop", uuid, exception))

    def stop_all(self, exception: type[BaseException]) -> None:
        self.did.append(("stop_all", exception))  # the futures here run on regardless

    def _run_plan(self, plan: Any, give_up_after_ms: int = 0) -> None:
        self.did.append(("plan", plan.__name__))
        plan.close()

    # -- helpers for the tests --------------------------------------------------------------

    def one_pass(self) -> None:
        drive(self._pass_steps())

    def run_messages(self, count: int) -> list[Message]:
        """Claim and start ``count`` messages; forget what that did."""
        messages = self.submit(count)
        self.one_pass()
        self.did.clear()
        self.memory_broker.calls.clear()
        return messages

    def submit(self, count: int, **options: Any) -> list[Message]:
        messages = [Message("add", queue="q", **options) for _ in range(count)]
        self.queue += messages
        return messages

    def kinds(self) -> list[str]:
        return [entry[0] for entry in self.did]


@pytest.fixture
def pool(clock: FakeClock) -> MemoryPool:
    return MemoryPool(clock)


# -- slots and claims --------------------------------------------------------------------------


def test_a_pass_claims_exactly_the_free_slots_and_starts_what_it_got(pool: MemoryPool) -> None:
    pool.run_messages(1)
    queued = pool.submit(5)
    pool.one_pass()
    assert ("claim", 3) in pool.did
    assert [e[1] for e in pool.did if e[0] == "submit"] == [m.uuid for m in queued[:3]]
    assert pool.free_slots() == 0


def test_a_full_pool_waits_for_a_slot_instead_of_claiming(pool: MemoryPool) -> None:
    pool.run_messages(4)
    pool.one_pass()
    assert "claim" not in pool.kinds()
    assert pool.did[-1] == ("wait_for_slot", SLOT_WAIT)


def test_a_backlogged_pool_gathers_half_its_slots_before_claiming(clock: FakeClock) -> None:
    pool = MemoryPool(clock, capacity=8)
    first = pool.run_messages(8)[0]  # the claim came back full: work is backed up
    pool.submit(20)
    pool.finish_after_ms = {first.uuid: 0}  # one slot frees up
    pool.one_pass()
    assert pool.did == [("wait_for_slot", SLOT_WAIT)]  # one slot is not worth a claim yet
    pool.did.clear()
    pool.one_pass()
    assert pool.kinds() == ["claim", "submit"]  # waited long enough: claims for that slot
    assert pool.did[0] == ("claim", 1)


def test_a_pool_that_is_not_backlogged_claims_for_a_single_free_slot(clock: FakeClock) -> None:
    pool = MemoryPool(clock, capacity=8)
    pool.run_messages(7)  # fewer than asked for: the queue ran dry
    pool.submit(3)
    pool.one_pass()
    assert ("claim", 1) in pool.did


def test_an_idle_pool_waits_for_work_until_the_next_message_is_due(
    pool: MemoryPool, clock: FakeClock
) -> None:
    pool.next_due = clock.now + 150
    pool.one_pass()
    assert pool.did == [("claim", 4), ("wait_for_work", clock.now + 150)]


def test_an_idle_pool_wakes_for_lease_renewals_first(pool: MemoryPool, clock: FakeClock) -> None:
    pool.run_messages(1)
    pool.next_due = clock.now + 10 * LEASE_TTL
    pool.one_pass()
    assert pool.did[-1] == ("wait_for_work", clock.now + RENEW_EVERY)


# -- admission ---------------------------------------------------------------------------------


def test_a_message_of_an_unknown_task_is_dead_lettered_not_started(pool: MemoryPool) -> None:
    pool.queue.append(Message("nobody_declared_this", queue="q"))
    pool.one_pass()
    assert ("plan", "unknown_task_plan") in pool.did
    assert "submit" not in pool.kinds()
    assert pool._inflight_messages() == []


def test_a_message_whose_lost_attempts_used_up_its_retries_is_failed_unstarted(
    pool: MemoryPool,
) -> None:
    lost = ExceptionDetails(name=get_exception_name(WorkerLostError), text="lost")
    pool.queue.append(Message("add", queue="q", retries=4, exception_details=lost))  # max is 3
    pool.one_pass()
    assert ("plan", "lost_plan") in pool.did
    assert "submit" not in pool.kinds()


def test_a_message_that_cannot_start_after_all_is_released(pool: MemoryPool) -> None:
    pool.refuse_submit = True
    (message,) = pool.submit(1)
    pool.one_pass()
    assert pool.did == [("claim", 4), ("submit", message.uuid), ("plan", "release_plan")]
    assert pool._inflight_messages() == []


# -- leases and revocations ----------------------------------------------------------------------


def test_leases_are_renewed_at_once_then_every_third_of_the_lease(
    pool: MemoryPool, clock: FakeClock
) -> None:
    messages = pool.run_messages(2)
    uuids = [m.uuid for m in messages]
    pool.one_pass()
    assert pool.memory_broker.calls == [("renew", uuids), ("revoked", uuids)]
    pool.memory_broker.calls.clear()
    clock.advance(RENEW_EVERY - 1)
    pool.one_pass()
    assert pool.memory_broker.calls == []
    clock.advance(1)
    pool.one_pass()
    assert pool.memory_broker.calls == [("renew", uuids)]  # revocations: every 5 s only


def test_nothing_is_renewed_while_nothing_runs(pool: MemoryPool, clock: FakeClock) -> None:
    clock.advance(10 * LEASE_TTL)
    pool.one_pass()
    assert pool.memory_broker.calls == []


def test_a_lost_lease_is_reported(pool: MemoryPool, caplog: pytest.LogCaptureFixture) -> None:
    message, _still_held = pool.run_messages(2)
    pool.memory_broker.lost.add(message.uuid)
    with caplog.at_level(logging.WARNING, logger="alsek"):
        pool.one_pass()
    lost = [r.getMessage() for r in caplog.records if "Lost the lease" in r.getMessage()]
    assert lost == [f"Lost the lease on {message.summary}; it may run elsewhere"]


def test_the_periodic_check_stops_running_messages_that_were_revoked(
    pool: MemoryPool, clock: FakeClock
) -> None:
    revoked, _not_revoked = pool.run_messages(2)
    pool.one_pass()  # the first check finds nothing
    pool.memory_broker.revoked_uuids.add(revoked.uuid)
    clock.advance(REVOCATION_CHECK_MS - 1)
    pool.one_pass()
    assert "stop" not in pool.kinds()
    clock.advance(1)
    pool.one_pass()
    assert [e for e in pool.did if e[0] == "stop"] == [("stop", revoked.uuid, RevokedError)]


def test_a_revocation_notice_stops_only_a_message_the_pool_runs(pool: MemoryPool) -> None:
    (running,) = pool.run_messages(1)
    drive(pool._stop_revoked_steps("someone-elses-message"))
    assert pool.did == []
    drive(pool._stop_revoked_steps(running.uuid))
    assert pool.did == [("stop", running.uuid, RevokedError)]


# -- timeouts ----------------------------------------------------------------------------------


def test_a_future_past_its_timeout_is_found_once_its_timeout_is_due(
    pool: MemoryPool, clock: FakeClock
) -> None:
    pool.submit(1, timeout=500)
    pool.submit(1, timeout=2_000)
    pool.one_pass()
    short, long = pool.futures.values()
    clock.advance(500)
    assert pool._overdue(pool.futures.values()) == []  # not past it yet: 500 ms is allowed
    clock.advance(1)
    assert pool._overdue(pool.futures.values()) == [short]
    assert pool._timeouts_due == long.created_at + 2_000 + 1  # the next one to look at
    short.complete = True
    clock.advance(1_500)
    assert pool._overdue(pool.futures.values()) == [long]


def test_a_stopped_future_still_running_is_not_watched_again(
    pool: MemoryPool, clock: FakeClock
) -> None:
    pool.submit(1, timeout=100)
    pool.one_pass()
    clock.advance(101)
    assert len(pool._overdue(pool.futures.values())) == 1
    assert pool._timeouts_due is None
    assert pool._overdue(pool.futures.values()) == []  # nothing due: not even looked at


def test_an_idle_wait_ends_when_a_timeout_is_due(pool: MemoryPool, clock: FakeClock) -> None:
    pool.submit(1, timeout=200)
    pool.one_pass()
    pool.did.clear()
    pool.one_pass()
    assert pool.did[-1] == ("wait_for_work", clock.now + 201)


# -- shutdown ----------------------------------------------------------------------------------


def test_draining_keeps_renewing_leases_until_the_runs_finish(clock: FakeClock) -> None:
    pool = MemoryPool(clock, grace_period=4 * LEASE_TTL)  # longer than the lease
    (message,) = pool.run_messages(1)
    pool.finish_after_ms = {message.uuid: LEASE_TTL + 10}  # runs on past its lease
    start = clock.now
    drive(pool._drain_steps())
    assert clock.now - start < LEASE_TTL + 3 * SLOT_WAIT  # ended soon after the run did
    assert max(e[1] for e in pool.did if e[0] == "wait_for_slot") <= SLOT_WAIT
    renewals = [call for call in pool.memory_broker.calls if call[0] == "renew"]
    assert len(renewals) == 4  # at once, then every third of the lease
    assert ("plan", "release_plan") not in pool.did  # it finished: nothing to release


def test_at_the_end_of_the_grace_period_the_rest_are_stopped_and_released(
    pool: MemoryPool, clock: FakeClock
) -> None:
    pool.run_messages(2)
    start = clock.now
    drive(pool._drain_steps())
    assert clock.now - start == GRACE  # waited until the deadline, not beyond
    assert pool.did[-3:] == [
        ("stop_all", TerminationError),
        ("plan", "release_plan"),
        ("plan", "release_plan"),
    ]
    assert pool._inflight_messages() == []
    assert not pool._can_run


def test_a_redis_outage_while_draining_does_not_end_the_grace_period(
    pool: MemoryPool, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    (message,) = pool.run_messages(1)
    pool.finish_after_ms = {message.uuid: 500}
    pool.memory_broker.outage = True
    with caplog.at_level(logging.WARNING, logger="alsek"):
        drive(pool._drain_steps())
    assert "Could not renew leases while stopping" in caplog.text
    assert "stop_all" in pool.kinds()
    assert ("plan", "release_plan") not in pool.did  # it finished within the grace period


# -- the loop and its drivers ------------------------------------------------------------------


def test_a_redis_outage_during_a_pass_pauses_and_the_loop_carries_on(pool: MemoryPool) -> None:
    (message,) = pool.run_messages(1)
    pool.memory_broker.outage = True
    pool.finish_after_ms = {message.uuid: 100}  # done by the end of the pause
    drive(pool._engine_steps())
    assert pool.did[0] == ("pause_for_outage", "ConnectionError")
    assert pool.did[-1][0] == "wait_for_work"  # the next pass ran, found nothing, and stopped


def _steps(log: list[Any]) -> Steps[None]:
    try:
        log.append((yield call(lambda: 1)))
        yield call(_raise)
    except KeyError as error:
        log.append(f"caught {error}")
    log.append((yield call(_coroutine_or_value)))


def _raise() -> None:
    raise KeyError("where it was yielded")


async def _later() -> str:
    return "awaited"


def _coroutine_or_value() -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "plain"
    return _later()


def test_both_drivers_run_the_same_steps_raising_errors_where_they_were_yielded() -> None:
    blocking: list[Any] = []
    drive(_steps(blocking))
    awaiting: list[Any] = []
    asyncio.run(drive_async(_steps(awaiting)))
    assert blocking == [1, "caught 'where it was yielded'", "plain"]
    assert awaiting == [1, "caught 'where it was yielded'", "awaited"]
