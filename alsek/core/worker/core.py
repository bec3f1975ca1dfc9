"""``PoolCore``: what every worker pool decides without I/O, sync or asyncio alike.

It holds the pool's settings, its tasks and the messages it runs, and decides: how many
messages to claim and when, what to do with a claimed message, when running futures pass their
timeout, when leases are renewed and revocations checked, and how long a shutdown lets running
messages finish; and, at start, what it announces and how it waits for Redis to answer.
``PoolLoop`` (``loop``) strings these decisions into the pool's loop; ``BaseWorkerPool`` and
``AsyncBaseWorkerPool`` add the I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar

import redis

from alsek._version import __version__
from alsek.core.broker import ClaimSource
from alsek.core.consumer.base import SubsetType
from alsek.core.future.outcome import exhausted_by_lost_workers
from alsek.core.message import Message
from alsek.core.steps.ops import ScriptCall, Steps, invoke
from alsek.core.steps.outage import (
    CLAIM_OUTAGE_PAUSES_MS,
    REDIS_OUTAGE_ERRORS,
    outage_pause_ms,
)
from alsek.core.worker.heartbeat import DEFAULT_HEARTBEAT_INTERVAL, Heartbeat
from alsek.core.worker.helpers import (
    _gather_task_names,
    derive_consumer_subset,
    extract_broker,
    filter_tasks_of_kind,
    merged_claim_status,
)
from alsek.core.worker.lifecycle import RunState
from alsek.exceptions import MetricsUnavailableError, RedisAccessError
from alsek.storage.backends.location import redis_location
from alsek.types import SupportedMechanismType
from alsek.utils.system import StopSignalListener
from alsek.utils.temporal import utcnow_timestamp_ms

log = logging.getLogger(__name__)


#: How often running messages are checked for revocation, in case a pub/sub notice was missed.
REVOCATION_CHECK_MS = 5_000
#: Default time (ms) running messages get to finish after a stop signal.
DEFAULT_GRACE_PERIOD = 10_000
#: Default longest wait (ms) for a free slot before looking again.
DEFAULT_SLOT_WAIT_INTERVAL = 50
#: What Redis answers to credentials or rights it refuses: no amount of waiting fixes them.
REDIS_REFUSALS = (redis.AuthenticationError, redis.exceptions.NoPermissionError)
#: Leases are renewed this many times per lease length: two renewals in a row can fail (a
#: Redis hiccup) before a lease expires under a message that still runs.
RENEWALS_PER_LEASE = 3


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def monotonic_ms() -> int:
    """A clock for intervals, in ms."""
    return int(time.monotonic() * 1000)


class RunningFuture(Protocol):
    """What the timeout decisions read of a future (``TaskFuture`` has it)."""

    message: Message
    created_at: int

    @property
    def complete(self) -> bool:
        """Whether it is done."""

    @property
    def time_limit_exceeded(self) -> bool:
        """Whether it has run longer than its message's timeout."""


F = TypeVar("F", bound=RunningFuture)


class Admission(Enum):
    """What to do with a claimed message."""

    START = "start"
    #: The body names a task the pool does not serve (it claims only its own: a body rewritten
    #: to name another task).
    UNKNOWN_TASK = "unknown task"
    EXHAUSTED = "retries used up by lost workers"
    #: Claimed later than its ``max_age`` after its submit: dead-lettered unrun.
    TOO_OLD = "past its max_age"


def admission_of(task_map: Mapping[str, Any], message: Message) -> Admission:
    """Whether a claimed message may start, or why not."""
    task = task_map.get(message.task_name)
    if task is None:
        return Admission.UNKNOWN_TASK
    if exhausted_by_lost_workers(task, message):
        return Admission.EXHAUSTED
    if task.age_beyond_max(message) is not None:
        return Admission.TOO_OLD
    return Admission.START


class PoolCore:
    """State and decisions shared by every pool.

    Args:
        mechanism: which tasks it serves (``"thread"`` or ``"process"``).
        tasks: the tasks it can run; they must share one broker.
        queues: the queues to consume, in priority order (default: those of ``tasks``).
        task_specific_mode: consume queue/task pairs rather than whole queues.
        slot_wait_interval: longest wait (ms) for a free slot before looking again.
        grace_period: ms running messages get to finish after a stop signal.
        heartbeat_interval: ms between two beats of the pool in the worker registry
            (``alsek.core.worker.heartbeat``); it counts as dead after a few missed beats.
        unknown_task_ttl: ms after which a ready message of a task that no live pool serves
            is dead-lettered ("no worker serves task X") by the pools of its queue; ``None``
            (the default): such messages wait, visible as unserved, until a pool serves them.
        metrics_port: serve this pool's Prometheus metrics on ``http://0.0.0.0:PORT/metrics``
            while it runs (``alsek.metrics.pool``; needs the ``alsek[metrics]`` extra); 0 picks
            a free port (logged). ``None`` (the default): no metrics.
        **consumer_options: the consumer's (``backoff``, ``lease_ttl``, ``owner_id``).
    """

    #: The kind of tasks the pool runs: ``"sync"`` or ``"async"``.
    task_kind: ClassVar[Literal["sync", "async"]]
    #: What the worker registry calls the pool: ``"thread"``, ``"process"`` or ``"async"``.
    worker_kind: ClassVar[str] = "thread"
    #: Whether the pool beats in the worker registry (a thread pool's process groups do not:
    #: their pool beats for them).
    registers: ClassVar[bool] = True

    # Set by the consumer the pool also is (``Consumer`` or ``AsyncConsumer``).
    broker: Any
    subset: SubsetType
    lease_ttl: int
    stop_signal: StopSignalListener

    if TYPE_CHECKING:

        def _sources(self) -> list[ClaimSource]: ...

    def __init__(
        self,
        *,
        mechanism: SupportedMechanismType,
        tasks: list[Any] | tuple[Any, ...],
        queues: list[str] | None = None,
        task_specific_mode: bool = False,
        slot_wait_interval: int = DEFAULT_SLOT_WAIT_INTERVAL,
        grace_period: int = DEFAULT_GRACE_PERIOD,
        heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
        unknown_task_ttl: int | None = None,
        metrics_port: int | None = None,
        **consumer_options: Any,
    ) -> None:
        served = filter_tasks_of_kind(tasks, mechanism, self.task_kind)
        # The pool claims the messages of the tasks it runs, and no others: those of tasks it
        # does not know (served by other pools, or by nobody yet) stay queued.
        self._init_consumer(
            broker=extract_broker(served),
            subset=derive_consumer_subset(served, queues, task_specific_mode),
            task_names=[task.name for task in served],
            **consumer_options,
        )
        self.tasks = served
        self.queues = queues or sorted(self.subset or [])
        self.task_specific_mode = task_specific_mode
        self.slot_wait_interval = slot_wait_interval
        self.grace_period = grace_period
        self._task_map = {task.name: task for task in served}
        self._can_run = True
        self.claim_status, self._running_at_claim = merged_claim_status(served)
        self._inflight: dict[str, Message] = {}
        self._inflight_lock = threading.RLock()
        self._next_renewal_ms = 0
        self._next_revocation_check_ms = 0
        self._backlogged = False
        self._gathering_since: int | None = None
        self._timeouts_due: int | None = None
        if isinstance(heartbeat_interval, bool) or not isinstance(heartbeat_interval, int):
            raise ValueError(f"heartbeat_interval must be an int of ms, got {heartbeat_interval!r}")
        if heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be > 0 ms, got {heartbeat_interval}")
        if unknown_task_ttl is not None and (
            isinstance(unknown_task_ttl, bool)
            or not isinstance(unknown_task_ttl, int)
            or unknown_task_ttl <= 0
        ):
            raise ValueError(
                f"unknown_task_ttl must be a positive int of ms or None, got {unknown_task_ttl!r}"
            )
        self.heartbeat_interval = heartbeat_interval
        self.unknown_task_ttl = unknown_task_ttl
        if metrics_port is not None and (
            isinstance(metrics_port, bool)
            or not isinstance(metrics_port, int)
            or not 0 <= metrics_port <= 65535
        ):
            raise ValueError(
                f"metrics_port must be a TCP port (0-65535) or None, got {metrics_port!r}"
            )
        self.metrics_port = metrics_port
        self._next_beat_ms = 0
        self._stopping = False
        self._run_state = RunState()

    def _serve_metrics(self) -> Callable[[], None]:
        """Start serving the pool's metrics if ``metrics_port`` asks for them; returns what
        stops serving.

        Raises:
            MetricsUnavailableError: the port cannot be bound, or prometheus-client is not
                installed.
        """
        if self.metrics_port is None:
            return lambda: None
        try:
            from alsek.metrics.pool import PoolMetricsServer  # an optional extra: when asked

            return PoolMetricsServer(self.metrics_port, [self.broker]).close
        except (ImportError, OSError) as error:
            raise MetricsUnavailableError(str(error)) from error

    def _init_consumer(self, **options: Any) -> None:
        """Set the pool up as the consumer it also is (sync or async)."""
        raise NotImplementedError

    def _writes_running(self, task: Any) -> bool:
        """Whether a future must record RUNNING itself (the claim did not)."""
        return task.status_tracker is not None and task.name not in self._running_at_claim

    # -- start-up ------------------------------------------------------------------------

    @property
    def redis_location(self) -> str:
        """The URL of the broker's Redis, password masked (for logs)."""
        return redis_location(self.broker.backend.conn)

    def _boot_lines(self) -> list[str]:
        """What the pool logs when it starts: version, Redis, and what it consumes, in order."""
        lines = [
            f"Running Alsek v{__version__}",
            f"Redis at {self.redis_location}, namespace {self.broker.backend.namespace!r}",
            f"Monitoring {len(self._task_map)} tasks over {len(self.queues)} queues",
        ]
        declared = _gather_task_names(self._task_map.values())
        for queue in self.queues:
            if isinstance(self.subset, dict):
                names = self.subset.get(queue, [])
            else:
                names = declared.get(queue, [])
            served = ", ".join(names) or "no task declares it (messages routed to it run here)"
            lines.append(f"Queue {queue!r}: {served}")
        for queue, names in declared.items():
            if queue not in self.queues:
                lines.append(f"Not consuming queue {queue!r} (of {', '.join(names)})")
        return lines

    def _rest(self, timeout_ms: int) -> Any:
        """Wait ``timeout_ms``, or less if a stop signal arrives (sync or asyncio)."""
        raise NotImplementedError

    def _reach_redis_steps(self) -> Steps[bool]:
        """Wait until Redis answers; ``False`` if a stop signal came first.

        An unreachable Redis (not started yet, restarting, loading its data, a network hiccup)
        is waited out, as a running pool waits out an outage, with one line naming it: workers
        and Redis may start in any order. A Redis that answers with a refusal (credentials,
        rights, a database that does not exist) ends the start at once (``RedisAccessError``):
        waiting would not fix it.
        """
        attempt = 0
        while not self.stop_signal.received:
            try:
                yield invoke(self.broker.backend.conn.ping)
            except REDIS_OUTAGE_ERRORS as error:
                if isinstance(error, REDIS_REFUSALS):
                    raise self._refused(error, "check the credentials in its URL") from error
                if attempt == 0:
                    log.error(
                        "Cannot reach Redis at %s (%s); retrying until it answers",
                        self.redis_location,
                        _describe(error),
                    )
                yield invoke(self._rest, outage_pause_ms(attempt, CLAIM_OUTAGE_PAUSES_MS))
                attempt += 1
            except redis.RedisError as error:
                hint = "check its rights" if isinstance(error, REDIS_REFUSALS) else "check its URL"
                raise self._refused(error, hint) from error
            else:
                if attempt:
                    log.info("Redis at %s answered (attempt %d)", self.redis_location, attempt + 1)
                return True
        return False

    def _refused(self, error: Exception, hint: str) -> RedisAccessError:
        return RedisAccessError(
            f"Redis at {self.redis_location} refused the pool ({_describe(error)}); {hint}"
        )

    # -- heartbeats -----------------------------------------------------------------------

    def _served_map(self) -> dict[str, list[str]]:
        """Queue → the task names the pool claims there (what the served index records)."""
        own = sorted(self._task_map)
        return {
            source.queue: sorted(source.tasks) if source.tasks else own
            for source in self._sources()
        }

    @cached_property
    def _heartbeat(self) -> Heartbeat:
        return Heartbeat(
            prefix=f"{self.broker.backend.namespace}:",
            kind=self.worker_kind,
            serves=self._served_map(),
            interval_ms=self.heartbeat_interval,
        )

    @property
    def worker_id(self) -> str:
        """The pool's id in the worker registry."""
        return self._heartbeat.worker_id

    def busy_slots(self) -> int:
        """Messages the pool runs right now (what its beats report)."""
        with self._inflight_lock:
            return len(self._inflight)

    def _due_beat(self) -> Steps[None] | None:
        """The steps of a beat when one is due, else ``None`` (a pool that does not register
        never beats)."""
        now = monotonic_ms()
        if not self.registers or now < self._next_beat_ms:
            return None
        self._next_beat_ms = now + self.heartbeat_interval
        return self._beat_steps()

    def _beat_steps(self) -> Steps[None]:
        """One beat, with the dead-lettering of unserved messages (``unknown_task_ttl``) of
        each queue the pool consumes in the same round trip."""
        state = "stopping" if self._stopping else "running"
        expiries = self._expire_unserved_calls()
        counts = yield from self._heartbeat.beat_steps(
            self.busy_slots(), self.capacity, state, expiries
        )
        for queue, reply in zip(self._heartbeat.serves, counts):
            count = self.broker._expired_count(queue, reply)
            if count:
                log.warning(
                    "Dead-lettered %s message(s) of queue %r: no live worker served their "
                    "task for %d ms",
                    count,
                    queue,
                    self.unknown_task_ttl,
                )

    def _expire_unserved_calls(self) -> list[ScriptCall]:
        """``expire_unserved`` calls for each queue, when ``unknown_task_ttl`` is set."""
        if self.unknown_task_ttl is None:
            return []
        status = self.claim_status
        names = ("key_template", "channel_template", "index_template", "history_template")
        templates = [getattr(status, name) if status else "" for name in names]
        length, payload = (status.history_length, status.unserved_payload) if status else (0, "")
        return [
            self.broker._expire_unserved_call(
                queue,
                self.unknown_task_ttl,
                self.broker.dlq_ttl or 0,
                *templates,
                length,
                payload,
                status.ttl if status else 0,
            )
            for queue in self._heartbeat.serves
        ]

    def _until_beat_ms(self) -> int:
        if not self.registers:
            return self.heartbeat_interval
        return max(self._next_beat_ms - monotonic_ms(), 1)

    # -- claiming ------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """How many messages the pool runs at once."""
        raise NotImplementedError

    def _gather_wait_ms(self, free: int) -> int:
        """How long to let more slots free up before claiming; 0: claim now.

        Only while work is backed up (the last claim came back full): then claiming for half
        the pool at a time, after at most ``slot_wait_interval``, makes fewer and fuller
        claims. An idle pool claims at once.
        """
        if not self._backlogged or free >= max(1, self.capacity // 2):
            self._gathering_since = None
            return 0
        now = monotonic_ms()
        if self._gathering_since is None:
            self._gathering_since = now
        left = self._gathering_since + self.slot_wait_interval - now
        if left <= 0:
            self._gathering_since = None
            return 0
        return left

    def _slots_taken(self, started: int, writing: int) -> int:
        """Slots taken by ``started`` messages, of which ``writing`` ran and are writing
        their outcome: a slot is free once its run ended, but at most one message per slot
        may write its outcome that way (so never more runs at once than slots, and at most
        twice as many leases for the length of an ack)."""
        return started - min(writing, self.capacity)

    def _note_claim(self, requested: int, claimed: int) -> None:
        self._backlogged = claimed >= requested

    def _full_wait_ms(self) -> int:
        """How long a full pool waits for a slot: no longer than until maintenance is due."""
        return min(self.slot_wait_interval, self._until_maintenance_ms())

    # -- messages ------------------------------------------------------------------------

    def _admit(self, message: Message) -> Admission:
        """Decide whether a claimed message starts; if it does, it is counted as running."""
        admission = admission_of(self._task_map, message)
        if admission is Admission.START:
            self._adopt(message)
        return admission

    def _adopt(self, message: Message) -> None:
        """Count a message that started as running (its lease is renewed from now on)."""
        with self._inflight_lock:
            self._inflight[message.uuid] = message

    def _finished(self, uuid: str) -> None:
        with self._inflight_lock:
            self._inflight.pop(uuid, None)

    def _inflight_messages(self) -> list[Message]:
        with self._inflight_lock:
            return list(self._inflight.values())

    def _is_running(self, uuid: str) -> bool:
        with self._inflight_lock:
            return uuid in self._inflight

    # -- timeouts ----------------------------------------------------------------------------

    def _watch_timeout(self, future: RunningFuture) -> None:
        """Note when a started future's timeout falls due, so that ``_overdue`` looks then."""
        due = future.created_at + future.message.timeout + 1
        self._timeouts_due = due if self._timeouts_due is None else min(self._timeouts_due, due)

    def _overdue(self, futures: Iterable[F]) -> list[F]:
        """The futures past their timeout, looked for only once a timeout is due.

        The next due time is that of the earliest future still running; one already past its
        timeout (stopped, but not done yet) is not watched again.
        """
        if self._timeouts_due is None or utcnow_timestamp_ms() < self._timeouts_due:
            return []
        overdue: list[F] = []
        due: int | None = None
        for future in futures:
            if future.time_limit_exceeded:
                overdue.append(future)
            elif not future.complete:
                limit = future.created_at + future.message.timeout + 1
                due = limit if due is None else min(due, limit)
        self._timeouts_due = due
        return overdue

    # -- schedule of maintenance ------------------------------------------------------------

    @property
    def _renew_interval_ms(self) -> int:
        return max(self.lease_ttl // RENEWALS_PER_LEASE, 1)

    def _until_maintenance_ms(self) -> int:
        """Time until leases, revocations or a beat are due."""
        if not self._inflight:
            return min(self._renew_interval_ms, self._until_beat_ms())
        due = min(self._next_renewal_ms, self._next_revocation_check_ms)
        return max(min(due - monotonic_ms(), self._until_beat_ms()), 1)

    def _wake_by(self, next_due: int | None) -> int:
        """Wall-clock time (ms) an idle wait must end: work due, maintenance, or a timeout."""
        candidates = [utcnow_timestamp_ms() + self._until_maintenance_ms()]
        candidates += [d for d in (next_due, self._timeouts_due) if d is not None]
        return min(candidates)

    def _maintenance_due(self) -> tuple[list[Message], bool, bool]:
        """The running messages, and whether their leases / revocations are due for a check."""
        messages = self._inflight_messages()
        now = monotonic_ms()
        renew = bool(messages) and now >= self._next_renewal_ms
        check = bool(messages) and now >= self._next_revocation_check_ms
        if renew:
            self._next_renewal_ms = now + self._renew_interval_ms
        if check:
            self._next_revocation_check_ms = now + REVOCATION_CHECK_MS
        return messages, renew, check

    @staticmethod
    def _report_renewals(messages: Sequence[Message], renewed: Sequence[bool | None]) -> None:
        for message, held in zip(messages, renewed):
            if held is False:
                log.warning("Lost the lease on %s; it may run elsewhere", message.summary)

    @staticmethod
    def _revoked_running(messages: Sequence[Message], revoked: Sequence[bool]) -> list[str]:
        return [message.uuid for message, flag in zip(messages, revoked) if flag]

    # -- shutdown ------------------------------------------------------------------------------

    def _grace_deadline(self) -> int:
        self._stopping = True
        self._next_beat_ms = 0  # say at once that the pool is stopping
        if self._inflight:
            log.info("Stopping: %d running get %d ms", len(self._inflight), self.grace_period)
        return monotonic_ms() + self.grace_period

    def _draining(self, deadline: int) -> bool:
        return bool(self._inflight) and monotonic_ms() < deadline

    def _drain_wait_ms(self, deadline: int) -> int:
        """How long a draining pool waits for a future to finish before looking again: no
        later than the deadline or the next lease renewal."""
        left = deadline - monotonic_ms()
        return max(min(self.slot_wait_interval, left, self._until_maintenance_ms()), 1)
