"""Trigger tasks: the schedule of ``TriggerTask`` / ``AsyncTriggerTask``, and the jobs it runs.

``TriggerTaskMixin`` holds every decision about a schedule (when to start, which tick a firing
belongs to, the fired message and its tick marker); the sync and asyncio trigger tasks only
choose their scheduler and perform the I/O. ``_MultiSubmit`` / ``_AsyncMultiSubmit`` are the jobs
that run on each firing, and the fire-time executors hand them the scheduled time of the firing,
which APScheduler 3 does not pass to jobs itself.

Nothing here needs ``BaseTask``: the mixin only reads the ``name`` of the task it is mixed into,
and the jobs call their task through small protocols. So this module sits below ``base.py``,
which re-exports ``TriggerTaskMixin`` under the import path SPEC gives it.
"""

from __future__ import annotations

import inspect
import logging
import uuid as uuid_module
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from alsek.core.broker import keys
from alsek.core.message import Message
from alsek.exceptions import MessageAlreadyExistsError, SchedulingError

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.schedulers.base import BaseScheduler

log = logging.getLogger(__name__)

TriggerType: TypeAlias = CronTrigger | DateTrigger | IntervalTrigger

#: Fired trigger messages get ``uuid5(_TRIGGER_UUID_NAMESPACE, "<queue>:<task>:<tick>")``.
_TRIGGER_UUID_NAMESPACE = uuid_module.uuid5(uuid_module.NAMESPACE_DNS, "triggers.alsek")
#: How long the Redis marker of a trigger tick lives beyond the trigger's interval: longer than
#: any clock skew or scheduling delay between the processes that fire the same tick.
TICK_MARKER_MARGIN_MS = 10 * 60 * 1000


class TriggerTaskMixin(ABC):
    """Scheduling for a task that submits a message on every firing of an APScheduler trigger.

    The scheduler starts on the first ``generate()``, which schedules the job; importing or
    building the task starts nothing. Every firing submits a new message (a duplicate of the
    template ``generate()`` built, whose uuid is its ``progenitor_uuid``) with its SUBMITTED
    status, and ``on_submit`` runs for it; the template itself is never submitted.

    When several processes schedule the same task, each tick yields exactly one message: the
    first process to claim the tick's marker in Redis (``SET NX``) submits it, under a uuid
    derived from (queue, task name, tick), so the broker's duplicate detection backs it up. The
    marker also covers a process that fires late, after the tick's message already ran and was
    acked (the broker no longer knows its uuid then). A process that dies between claiming the
    marker and submitting loses that one tick.

    Raises:
        SchedulingError: the function takes parameters (a firing has none to give).
    """

    trigger: TriggerType
    _start_paused: bool
    #: The task's name: ``BaseTask``, which the mixin is mixed into, provides it.
    name: str

    def __init__(self, function: Callable[..., Any], trigger: TriggerType, **kwargs: Any) -> None:
        if inspect.signature(function).parameters:
            raise SchedulingError("Function signature cannot includes parameters")
        super().__init__(function=function, **kwargs)  # type: ignore[call-arg]
        self.trigger = trigger
        self._start_paused = False

    def _prepare_many(
        self,
        args_list: Sequence[Sequence[Any]] | None,
        kwargs_list: Sequence[dict[Any, Any]] | None,
        **shared: Any,
    ) -> list[Message]:
        """Refused: a trigger task schedules one job (see ``BaseTask._prepare_many``)."""
        raise SchedulingError(
            f"Trigger task {self.job_name!r} schedules one job: use generate(), not generate_many()"
        )

    @cached_property
    def scheduler(self) -> BaseScheduler:
        """This task's scheduler (created, not started, on first use)."""
        return self._new_scheduler()

    @abstractmethod
    def _new_scheduler(self) -> BaseScheduler:
        """A scheduler that passes each firing's scheduled time to the job."""

    @property
    def job_name(self) -> str:
        """Id of the scheduled job: the task name."""
        return self.name

    @property
    def _job(self) -> Job | None:
        return self.scheduler.get_job(self.job_name)

    @property
    def generated(self) -> bool:
        """Whether the job is scheduled."""
        return self._job is not None

    def _schedule(self, job: Callable[..., Any]) -> None:
        """Start the scheduler if needed and add the job on the trigger."""
        if self.generated:
            raise SchedulingError("Task already scheduled")
        if not self.scheduler.running:
            self.scheduler.start(paused=self._start_paused)
        self.scheduler.add_job(
            job, trigger=self.trigger, id=self.job_name, coalesce=True, max_instances=1
        )

    def clear(self) -> None:
        """Remove the job.

        Raises:
            AttributeError: the task was not generated (no job is scheduled).
        """
        try:
            self.scheduler.remove_job(self.job_name)
        except JobLookupError:
            raise AttributeError("Task not generated") from None

    def pause(self) -> None:
        """Stop firing until ``resume()`` (before the first ``generate()``: start paused)."""
        if self.scheduler.running:
            self.scheduler.pause()
        self._start_paused = True

    def resume(self) -> None:
        """Fire again after ``pause()``."""
        if self.scheduler.running:
            self.scheduler.resume()
        self._start_paused = False

    def shutdown(self) -> None:
        """Stop the scheduler and drop the schedule; a later ``generate()`` starts afresh."""
        if self.scheduler.running:
            self.scheduler.shutdown()
        del self.__dict__["scheduler"]

    # -- firings (no I/O) --------------------------------------------------------------------

    def _tick(self, fire_time: datetime) -> int:
        """The tick (ms) a firing belongs to: the same in every process scheduling this task.

        An ``IntervalTrigger`` starts ``interval`` after it is built unless given a
        ``start_date``, so processes fire out of phase: their ticks are the interval-aligned
        slots the fire times fall in. Other triggers fire at wall-clock times all agree on.
        """
        fire_ms = round(fire_time.timestamp() * 1000)
        if isinstance(self.trigger, IntervalTrigger):
            interval_ms = max(round(float(self.trigger.interval_length) * 1000), 1)
            return fire_ms - fire_ms % interval_ms
        return fire_ms

    def _fired_message(self, template: Message, fire_time: datetime | None) -> Message:
        """The message for one firing: ``template`` under the tick's uuid, created at firing."""
        fire_time = fire_time or datetime.now(timezone.utc)
        tick = self._tick(fire_time)
        uuid = uuid_module.uuid5(
            _TRIGGER_UUID_NAMESPACE, f"{template.queue}:{template.task_name}:{tick}"
        )
        fire_ms = round(fire_time.timestamp() * 1000)
        return template.duplicate(uuid=str(uuid)).update(
            progenitor_uuid=template.progenitor_uuid or template.uuid,
            created_at=fire_ms,
            updated_at=fire_ms,
            ready_at=None,
        )

    def _tick_marker(self, message: Message) -> tuple[str, int]:
        """Name and TTL (ms) of the key whose ``SET NX`` wins a fired message's tick."""
        interval_ms = 0
        if isinstance(self.trigger, IntervalTrigger):
            interval_ms = round(float(self.trigger.interval_length) * 1000)
        name = f"{keys.queue_base(message.queue)}:triggers:{message.uuid}"
        return name, interval_ms + TICK_MARKER_MARGIN_MS


# -- the jobs a schedule runs ------------------------------------------------------------------


class _FiringTask(Protocol):
    """What ``_MultiSubmit`` calls on its ``TriggerTask``."""

    def _fired_message(self, template: Message, fire_time: datetime | None) -> Message: ...

    def _claim_tick(self, message: Message) -> bool: ...

    def _submit_now(self, message: Message, **options: Any) -> Message: ...


class _AsyncFiringTask(Protocol):
    """What ``_AsyncMultiSubmit`` calls on its ``AsyncTriggerTask``."""

    def _fired_message(self, template: Message, fire_time: datetime | None) -> Message: ...

    def _claim_tick(self, message: Message) -> Awaitable[bool]: ...

    def _submit_now(self, message: Message, **options: Any) -> Awaitable[Message]: ...


def _already_fired(message: Message) -> None:
    log.debug("Trigger tick of %s was submitted by another process", message.summary)


class _MultiSubmit:
    """The job a ``TriggerTask`` schedules: each firing submits one new message for its tick.

    The message is ``message`` (the template) duplicated under the tick's uuid. Only the process
    that wins the tick's marker in Redis submits it; the broker's duplicate detection backs that
    up. ``options`` go to ``broker.submit`` (e.g. ``ttl``).
    """

    def __init__(self, task: _FiringTask, message: Message, options: dict[str, Any]) -> None:
        self.task = task
        self.message = message
        self.options = options

    def __call__(self, fire_time: datetime | None = None) -> None:
        """Submit the message of the firing scheduled at ``fire_time`` (default: now)."""
        fired = self.task._fired_message(self.message, fire_time)
        if not self.task._claim_tick(fired):
            _already_fired(fired)
            return
        try:
            self.task._submit_now(fired, **self.options)
        except MessageAlreadyExistsError:
            _already_fired(fired)


class _AsyncMultiSubmit:
    """The awaitable ``_MultiSubmit``, for ``AsyncTriggerTask``."""

    def __init__(self, task: _AsyncFiringTask, message: Message, options: dict[str, Any]) -> None:
        self.task = task
        self.message = message
        self.options = options

    async def __call__(self, fire_time: datetime | None = None) -> None:
        """Submit the message of the firing scheduled at ``fire_time`` (default: now)."""
        fired = self.task._fired_message(self.message, fire_time)
        if not await self.task._claim_tick(fired):
            _already_fired(fired)
            return
        try:
            await self.task._submit_now(fired, **self.options)
        except MessageAlreadyExistsError:
            _already_fired(fired)


class _FiredJob:
    """A scheduled job as run for one firing: the call also gets ``fire_time``."""

    def __init__(self, job: Any, fire_time: datetime) -> None:
        self._job = job
        self.kwargs = {**job.kwargs, "fire_time": fire_time}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)

    def __str__(self) -> str:
        return str(self._job)


class _FireTimeMixin:
    """Executor part that passes the scheduled fire time, so every process names a tick alike.

    Jobs are added with ``coalesce=True``, so a firing has one run time (the latest).
    """

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        super()._do_submit_job(_FiredJob(job, run_times[-1]), run_times[-1:])  # type: ignore[misc]


# APScheduler ships no types, so its executors are ``Any`` to mypy (``--strict`` refuses to
# subclass that; the plain configuration does not, hence ``unused-ignore``).


class FireTimeThreadPoolExecutor(_FireTimeMixin, ThreadPoolExecutor):  # type: ignore[misc, unused-ignore]
    """APScheduler's thread pool executor, passing ``fire_time`` to the job."""


class FireTimeAsyncIOExecutor(_FireTimeMixin, AsyncIOExecutor):  # type: ignore[misc, unused-ignore]
    """APScheduler's asyncio executor, passing ``fire_time`` to the job."""
