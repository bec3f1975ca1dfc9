"""What ``Task`` and ``AsyncTask`` share: every decision about a task that is not I/O.

``BaseTask`` validates arguments, builds messages, decides whether to revoke or retry, and builds
the *effects* that let one broker call also record the status and the result (the futures and
pools finish a message in one round trip with them). ``Task`` and ``AsyncTask`` only perform the
I/O. ``TriggerTaskMixin`` adds the schedule of a trigger task.

Effects ride along only on the broker's own Redis server. When the status tracker or the result
store lives on another server, the effect builders leave it out and the task writes it directly
right after the broker call (``write_unshared``); ``_on_broker_server`` is the one place that
decides which.
"""

from __future__ import annotations

import inspect
import logging
import uuid as uuid_module
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias, cast

from apscheduler.jobstores.base import JobLookupError
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from alsek.core.backoff import Backoff, ConstantBackoff, ExponentialBackoff
from alsek.core.broker import keys
from alsek.core.broker.effects import ClaimStatus, Effect, effect_commands
from alsek.core.message import Message
from alsek.core.status.types import TERMINAL_TASK_STATUSES, StatusUpdate, TaskStatus
from alsek.core.steps.ops import Steps, call
from alsek.core.task.helpers import expects_message, parse_callback
from alsek.defaults import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MECHANISM,
    DEFAULT_QUEUE,
    DEFAULT_TASK_TIMEOUT,
)
from alsek.exceptions import RevokedError, SchedulingError, ValidationError
from alsek.types import SUPPORTED_MECHANISMS, SupportedMechanismType
from alsek.utils.aggregation import gather_init_params
from alsek.utils.namespacing import validate_name
from alsek.utils.parsing import ExceptionDetails, get_exception_name
from alsek.utils.printing import auto_repr

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.schedulers.base import BaseScheduler

    from alsek.core.broker import BaseBroker
    from alsek.core.status.base import BaseStatusTracker
    from alsek.storage.result._base import BaseResultStore

log = logging.getLogger(__name__)

TriggerType: TypeAlias = CronTrigger | DateTrigger | IntervalTrigger
_DEFAULT_MECHANISM = cast(SupportedMechanismType, DEFAULT_MECHANISM)

#: Fired trigger messages get ``uuid5(_TRIGGER_UUID_NAMESPACE, "<queue>:<task>:<tick>")``.
_TRIGGER_UUID_NAMESPACE = uuid_module.uuid5(uuid_module.NAMESPACE_DNS, "triggers.alsek")
#: How long the Redis marker of a trigger tick lives beyond the trigger's interval: longer than
#: any clock skew or scheduling delay between the processes that fire the same tick.
TICK_MARKER_MARGIN_MS = 10 * 60 * 1000

#: The connection settings that identify a Redis server. ``server`` is fakeredis' in-memory
#: server object (compared by identity); real clients do not have it.
_SERVER_KWARGS = ("host", "port", "db", "path", "server")


def _server_identity(backend: Any) -> tuple[Any, ...]:
    kwargs = backend.conn.connection_pool.connection_kwargs
    return tuple(kwargs.get(name) for name in _SERVER_KWARGS)


#: ``generate`` fields that ``generate_many`` shares between its messages, with their defaults.
#: ``uuid`` and ``callback`` identify one message, so they cannot be shared.
_SHARED_FIELD_DEFAULTS: dict[str, Any] = {
    "priority": 0,
    "metadata": None,
    "result_ttl": None,
    "timeout_override": None,
    "delay": None,
    "previous_result": None,
    "queue": None,
    "mechanism": None,
    "run_in_main_thread": None,
    "ready_at": None,
}


def split_many_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``generate_many``'s options as (message fields, broker submit options).

    Raises:
        ValueError: ``uuid`` or ``callback``, which each message must have for itself.
    """
    for name in ("uuid", "callback"):
        if name in options:
            raise ValueError(f"generate_many cannot share {name!r} between messages")
    fields = {name: options.get(name, default) for name, default in _SHARED_FIELD_DEFAULTS.items()}
    rest = {name: value for name, value in options.items() if name not in fields}
    return fields, rest


def _log_generated(output: Message) -> None:
    log.debug("Generated %s", output.summary)


def _log_generated_many(output: list[Message]) -> None:
    log.debug("Generated %s message(s)", len(output))


def _apply_steps(effects: list[Effect]) -> Steps[None]:
    """Apply ``effects`` in one MULTI/EXEC, without a broker operation."""
    yield call(*effect_commands(effects), atomic=True)


class BaseTask(ABC):
    """A function that can run elsewhere: messages for it go to a broker, workers run them.

    Args:
        function: what runs; called with the message's ``args`` and ``kwargs`` (and
            ``message=`` when it takes a ``message`` parameter, see ``expects_message``).
        name: the task's identity in keys and dispatch; default ``function.__name__``.
        queue: where its messages go; default ``DEFAULT_QUEUE``.
        timeout: how long (ms) one run may take before it is stopped.
        max_retries: attempts after the first; ``None`` retries without limit.
        backoff: wait before each retry; ``None`` retries at once.
        status_tracker: records each message's status, if given.
        mechanism: ``"thread"`` or ``"process"``: how workers run it.
        run_in_main_thread: run in the worker's main thread (for code that needs it).
        no_positional_args: refuse ``args`` in ``generate`` (keyword arguments only).

    Raises:
        ValueError: an unsupported mechanism, an invalid name or queue, or a component (broker,
            status tracker, result store) of the wrong kind (sync vs async) for this task.
    """

    #: ``"sync"`` or ``"async"``: how worker pools (and task scanning) recognise a task.
    _alsek_task_kind: ClassVar[Literal["sync", "async"]]

    broker: BaseBroker
    result_store: BaseResultStore | None
    default_result_ttl: int | None

    def __init__(
        self,
        function: Callable[..., Any],
        name: str | None = None,
        queue: str | None = None,
        timeout: int = DEFAULT_TASK_TIMEOUT,
        max_retries: int | None = DEFAULT_MAX_RETRIES,
        backoff: Backoff | None = ExponentialBackoff(),
        status_tracker: BaseStatusTracker | None = None,
        mechanism: SupportedMechanismType = _DEFAULT_MECHANISM,
        run_in_main_thread: bool = False,
        no_positional_args: bool = False,
    ) -> None:
        if mechanism not in SUPPORTED_MECHANISMS:
            raise ValueError(
                f"Unsupported mechanism {mechanism!r}; use one of {SUPPORTED_MECHANISMS}"
            )
        self.function = function
        self._name = name
        validate_name("task", self.name)
        self.queue = validate_name("queue", queue or DEFAULT_QUEUE)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff or ConstantBackoff(
            constant=0, floor=0, ceiling=0, zero_override=True
        )
        self.status_tracker = self._check_kind("status_tracker", status_tracker)
        self.mechanism = mechanism
        self.run_in_main_thread = bool(run_in_main_thread)
        self.no_positional_args = no_positional_args
        self._deferred = False

    def _attach(
        self,
        broker: BaseBroker,
        result_store: BaseResultStore | None,
        default_result_ttl: int | None,
    ) -> None:
        """Set the I/O components the concrete classes take (after checking their kind)."""
        if broker is None:
            raise ValueError(f"{type(self).__name__} needs a broker")
        self.broker = self._check_kind("broker", broker)
        self.result_store = self._check_kind("result_store", result_store)
        self.default_result_ttl = default_result_ttl

    def _check_kind(self, label: str, component: Any) -> Any:
        """``component`` if its backend is sync for a sync task and async for an async one."""
        if component is None:
            return None
        wants_async = self._alsek_task_kind == "async"
        if bool(component.backend.IS_ASYNC) != wants_async:
            wanted = "an async" if wants_async else "a sync"
            raise ValueError(
                f"{type(self).__name__} {self.name!r} needs {wanted} {label}, got "
                f"{type(component).__name__} with a {type(component.backend).__name__} backend"
            )
        return component

    # -- identity ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The task's identity in keys and dispatch: ``name``, else ``function.__name__``."""
        return self._name or self.function.__name__

    def __repr__(self) -> str:
        return auto_repr(
            self,
            function=self.function,
            broker=self.broker,
            name=self.name,
            queue=self.queue,
            max_retries=self.max_retries,
            backoff=self.backoff,
            mechanism=self.mechanism,
            deferred_mode="enabled" if self._deferred else "disabled",
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function here and now; no broker is involved."""
        return self.function(*args, **kwargs)

    # -- moving a task between processes -----------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """``{"task": <class>, "settings": {...}}``; carry it across processes with ``dill``."""
        settings = gather_init_params(self, ignore=("broker", "status_tracker", "result_store"))
        settings["broker_class"] = type(self.broker)
        settings["broker_state"] = self.broker.serialize()
        for label in ("status_tracker", "result_store"):
            component = getattr(self, label)
            if component is not None:
                settings[f"{label}_class"] = type(component)
                settings[f"{label}_state"] = component.serialize()
        return {"task": type(self), "settings": settings}

    @staticmethod
    def deserialize(data: dict[str, Any]) -> BaseTask:
        """Rebuild a task (with new connection pools) from ``serialize()``'s output."""
        settings = dict(data["settings"])
        for label in ("broker", "status_tracker", "result_store"):
            if f"{label}_class" in settings:
                component_class = settings.pop(f"{label}_class")
                settings[label] = component_class.deserialize(settings.pop(f"{label}_state"))
        task: BaseTask = data["task"](**settings)
        return task

    # -- deferred mode -----------------------------------------------------------------------

    @property
    def deferred(self) -> bool:
        """Whether the next ``generate()`` only builds its message (e.g. a callback's)."""
        return self._deferred

    def defer(self) -> BaseTask:
        """Make the next ``generate()`` build its message without submitting it."""
        self._deferred = True
        return self

    def cancel_defer(self) -> BaseTask:
        """Submit again on ``generate()``."""
        self._deferred = False
        return self

    def _take_deferred(self) -> bool:
        """Whether this generate is deferred; deferred mode lasts one generate only."""
        deferred = self._deferred
        self.cancel_defer()
        return deferred

    # -- building messages -------------------------------------------------------------------

    def _validate_generate(self, args: Any, priority: Any, result_ttl: Any) -> None:
        if result_ttl and self.result_store is None:
            raise ValidationError(
                f"Task {self.name!r}: result_ttl={result_ttl!r} needs a result store"
            )
        if args and self.no_positional_args:
            raise ValidationError(
                f"Task {self.name!r} takes keyword arguments only (no_positional_args), "
                f"got args={args!r}"
            )
        if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
            raise ValueError(f"priority must be an int >= 0, got {priority!r}")

    def _generate_message(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[Any, Any] | None = None,
        priority: int = 0,
        metadata: dict[Any, Any] | None = None,
        result_ttl: int | None = None,
        uuid: str | None = None,
        timeout_override: int | None = None,
        delay: int | None = None,
        previous_result: Any = None,
        callback: Message | tuple[Message, ...] | None = None,
        queue: str | None = None,
        mechanism: SupportedMechanismType | None = None,
        run_in_main_thread: bool | None = None,
        ready_at: int | None = None,
    ) -> Message:
        """Validate ``generate``'s arguments, then build its message (nothing is written).

        ``result_ttl=None`` means the task's ``default_result_ttl``; ``Message`` checks every
        other value.
        """
        self._validate_generate(args, priority, result_ttl)
        return Message(
            task_name=self.name,
            queue=queue or self.queue,
            args=tuple(args) if args is not None else None,
            kwargs=kwargs,
            priority=priority,
            metadata=metadata,
            result_ttl=self.default_result_ttl if result_ttl is None else result_ttl,
            uuid=uuid,
            timeout=timeout_override or self.timeout,
            delay=delay,
            previous_result=previous_result,
            callback_message_data=parse_callback(callback).data if callback else None,
            backoff_settings=dict(self.backoff.settings),
            mechanism=self.mechanism if mechanism is None else mechanism,
            run_in_main_thread=(
                self.run_in_main_thread if run_in_main_thread is None else run_in_main_thread
            ),
            ready_at=ready_at,
        )

    def _prepare_many(
        self,
        args_list: Sequence[Sequence[Any]] | None,
        kwargs_list: Sequence[dict[Any, Any]] | None,
        **shared: Any,
    ) -> list[Message]:
        """One message per item of ``args_list``/``kwargs_list`` (zipped), with ``shared``."""
        if isinstance(self, TriggerTaskMixin):
            raise SchedulingError(
                f"Trigger task {self.name!r} schedules one job: use generate(), not generate_many()"
            )
        if args_list is None and kwargs_list is None:
            raise ValueError("generate_many needs args_list, kwargs_list or both")
        if args_list is not None and kwargs_list is not None and len(args_list) != len(kwargs_list):
            raise ValueError(
                f"args_list and kwargs_list must have the same length, got {len(args_list)} "
                f"and {len(kwargs_list)}"
            )
        count = len(args_list) if args_list is not None else len(kwargs_list or ())
        nothing: list[None] = [None] * count
        every_args: Sequence[Sequence[Any] | None] = nothing if args_list is None else args_list
        every_kwargs: Sequence[dict[Any, Any] | None] = (
            nothing if kwargs_list is None else kwargs_list
        )
        return [
            self._generate_message(args=args, kwargs=kwargs, **shared)
            for args, kwargs in zip(every_args, every_kwargs)
        ]

    # -- effects (no I/O) --------------------------------------------------------------------

    def _on_broker_server(self, component: Any) -> bool:
        """Whether ``component``'s backend talks to the broker's Redis server.

        Effects are applied by the broker's script on the broker's server, so only the writes
        of a component on that same server may ride along; the others are written directly.
        """
        key = id(component)
        known = self._same_server.get(key)
        if known is None:
            mine, theirs = self.broker.backend, component.backend
            same = mine.conn is theirs.conn or _server_identity(mine) == _server_identity(theirs)
            known = self._same_server[key] = same
        return known

    @cached_property
    def _same_server(self) -> dict[int, bool]:
        # Components are fixed once the task is built: decide once per component.
        return {}

    def _outcome_records(
        self, message: Message, status: TaskStatus, result: Any = None
    ) -> list[tuple[Any, Callable[[], list[Effect]]]]:
        """What reaching ``status`` records, as (component, effects builder): the result
        (SUCCEEDED) or failure record (FAILED) of the result store, then the status."""
        records: list[tuple[Any, Callable[[], list[Effect]]]] = []
        store = self.result_store
        if store is not None and status is TaskStatus.SUCCEEDED:
            records.append((store, partial(store.effects, message, result)))
        elif store is not None and status is TaskStatus.FAILED:
            records.append((store, partial(store.failure_effects, message)))
        tracker = self.status_tracker
        if tracker is not None:
            records.append((tracker, partial(tracker.effects, message, status)))
        return records

    def _effects(self, message: Message, status: TaskStatus, result: Any = None) -> list[Effect]:
        return [
            effect
            for component, build in self._outcome_records(message, status, result)
            if self._on_broker_server(component)
            for effect in build()
        ]

    def _direct_writes(
        self, message: Message, status: TaskStatus, result: Any = None
    ) -> list[tuple[Any, Steps[None]]]:
        """(client, steps) of the records that cannot ride along: each written on its own
        component's Redis, atomically (what ``write_unshared`` runs)."""
        return [
            (component.backend.conn, _apply_steps(build()))
            for component, build in self._outcome_records(message, status, result)
            if not self._on_broker_server(component)
        ]

    def submit_effects(self, message: Message) -> list[Effect]:
        """Effects for ``broker.submit``: the SUBMITTED status."""
        return self._effects(message, TaskStatus.SUBMITTED)

    def running_claim_status(self) -> ClaimStatus | None:
        """The RUNNING write for ``broker.claim(..., status=...)`` of this task's messages.

        ``None`` without a tracker, or when the tracker is on another Redis: then write RUNNING
        with ``write_unshared(message, TaskStatus.RUNNING)`` after the claim.
        """
        tracker = self.status_tracker
        if tracker is None or not self._on_broker_server(tracker):
            return None
        return tracker.claim_status(TaskStatus.RUNNING, tasks=(self.name,))

    def retry_effects(self, message: Message) -> list[Effect]:
        """Effects for ``broker.retry``: the RETRYING status."""
        return self._effects(message, TaskStatus.RETRYING)

    def failure_effects(self, message: Message) -> list[Effect]:
        """Effects for ``broker.fail``: the failure record (result store) and FAILED."""
        return self._effects(message, TaskStatus.FAILED)

    def success_effects(self, message: Message, result: Any) -> list[Effect]:
        """Effects for ``broker.ack``: the result (result store) and SUCCEEDED."""
        return self._effects(message, TaskStatus.SUCCEEDED, result)

    def revocation_effects(self, message: Message) -> list[Effect]:
        """Effects for ``broker.revoke``: the failure record and FAILED."""
        return self._effects(message, TaskStatus.FAILED)

    # -- decisions ---------------------------------------------------------------------------

    def _should_revoke(
        self, message: Message, status: StatusUpdate | None, skip_if_running: bool
    ) -> bool:
        """Whether ``revoke`` goes ahead, given the current status (``None``: none recorded)."""
        if status is not None and status.value in TERMINAL_TASK_STATUSES:
            log.info("%s is already %s; not revoking it", message.summary, status.value.name)
            return False
        if skip_if_running and status is not None and status.value is TaskStatus.RUNNING:
            log.info("%s is running and skip_if_running is set; not revoking it", message.summary)
            return False
        return True

    def _check_revoke(self, skip_if_running: bool) -> None:
        if skip_if_running and self.status_tracker is None:
            raise AttributeError(
                f"Task {self.name!r}: skip_if_running needs a status tracker to know the status"
            )

    @staticmethod
    def _make_revoked_key_name(message: Message) -> str:
        """Short name of the flag a revocation sets (the backend adds the namespace)."""
        return keys.revoked_key(message.queue, message.uuid)

    @staticmethod
    def _mark_revoked(message: Message) -> None:
        """Record ``RevokedError`` on the message (its DLQ copy says why it is there)."""
        details = ExceptionDetails(
            name=get_exception_name(RevokedError), text="Task Revoked", traceback=None
        )
        message.update(exception_details=details.as_dict())

    def _retries_left(self, message: Message) -> bool:
        return self.max_retries is None or message.retries < self.max_retries

    def _call_arguments(self, message: Message) -> tuple[tuple[Any, ...], dict[Any, Any]]:
        """What ``op`` calls the function with: ``message=`` too when it asks for it."""
        kwargs = dict(message.kwargs)
        if "message" not in kwargs and self._expects_message:
            kwargs["message"] = message
        return message.args, kwargs

    @cached_property
    def _expects_message(self) -> bool:
        # Read once: inspecting a signature costs more than many a short task.
        return expects_message(self.function)

    def do_callback(self, message: Message, result: Any) -> bool:
        """Whether to submit the message's callback after ``result`` (always, by default)."""
        return True

    # -- hooks: no-ops to override (awaitable in AsyncTask) ----------------------------------

    def pre_op(self, message: Message) -> Any:
        """Runs before ``op``; an exception here counts as the run's exception."""
        return None

    def post_op(self, message: Message, result: Any) -> Any:
        """Runs after ``op`` succeeded; an exception here counts as the run's exception."""
        return None

    def on_submit(self, message: Message) -> Any:
        """Runs after the message was submitted."""
        return None

    def on_revocation(self, message: Message, exception: BaseException | None, result: Any) -> Any:
        """Runs when a revoked message stops, or finishes anyway (its result is discarded)."""
        return None

    def on_retry(self, message: Message, exception: BaseException) -> Any:
        """Runs when a failed attempt will be retried."""
        return None

    def on_failure(self, message: Message, exception: BaseException) -> Any:
        """Runs when the message failed for good (it goes to the DLQ)."""
        return None

    def on_success(self, message: Message, result: Any) -> Any:
        """Runs when the message succeeded."""
        return None

    # -- I/O, in Task and AsyncTask (return values are awaitable in AsyncTask) ---------------

    @abstractmethod
    def update_status(self, message: Message, status: TaskStatus) -> Any:
        """Write ``status`` through the status tracker, if there is one."""

    @abstractmethod
    def write_unshared(self, message: Message, status: TaskStatus, result: Any = None) -> Any:
        """Write what could not ride along with the broker call that reached ``status``."""

    @abstractmethod
    def _submit(self, message: Message, **options: Any) -> Any:
        """Submit the message (a trigger task schedules it instead)."""

    @abstractmethod
    def generate(self, *args: Any, **kwargs: Any) -> Message | Any:
        """Build a message for this task and submit it."""

    @abstractmethod
    def generate_many(self, *args: Any, **kwargs: Any) -> list[Message] | Any:
        """Build many messages for this task and submit them in pipelined round trips."""

    @abstractmethod
    def op(self, message: Message) -> Any:
        """Call the function for ``message``."""

    @abstractmethod
    def execute(self, message: Message) -> Any:
        """Run ``message`` (``op``)."""

    @abstractmethod
    def do_retry(self, message: Message, exception: BaseException) -> bool | Any:
        """Whether a failed attempt is retried."""

    @abstractmethod
    def revoke(self, message: Message, skip_if_running: bool = False) -> Any:
        """Revoke ``message``: stop it if it runs, never run it again."""

    @abstractmethod
    def is_revoked(self, message: Message) -> bool | Any:
        """Whether ``message`` was revoked."""


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

    def __init__(self, function: Callable[..., Any], trigger: TriggerType, **kwargs: Any) -> None:
        if inspect.signature(function).parameters:
            raise SchedulingError("Function signature cannot includes parameters")
        super().__init__(function=function, **kwargs)  # type: ignore[call-arg]
        self.trigger = trigger
        self._start_paused = False

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
        return self.name  # type: ignore[attr-defined]

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
            interval_ms = max(round(self.trigger.interval_length * 1000), 1)
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
            interval_ms = round(self.trigger.interval_length * 1000)
        name = f"{keys.queue_base(message.queue)}:triggers:{message.uuid}"
        return name, interval_ms + TICK_MARKER_MARGIN_MS
