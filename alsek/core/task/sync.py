"""``Task`` and ``TriggerTask``: the blocking I/O shells over ``BaseTask``.

``generate`` spells SPEC's parameters out here and in ``AsyncTask`` (its return type differs:
a ``Message``, or a coroutine of one), and hands them to ``BaseTask._generate_message``, which
holds every decision about them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

from apscheduler.schedulers.background import BackgroundScheduler

from alsek.core.backoff import Backoff
from alsek.core.broker import Broker
from alsek.core.message import Message
from alsek.core.status.sync import StatusTracker
from alsek.core.status.types import StatusUpdate, TaskStatus
from alsek.core.steps.drivers import run
from alsek.core.task.base import BaseTask, P, R
from alsek.core.task.generating import _log_generated, _log_generated_many
from alsek.core.task.message_options import RetryWhen
from alsek.core.task.options import TASK_DEFAULTS
from alsek.core.task.triggers import (
    FireTimeThreadPoolExecutor,
    TriggerTaskMixin,
    TriggerType,
    _MultiSubmit,
)
from alsek.core.task_limits import RateLimit
from alsek.defaults import DEFAULT_TTL
from alsek.storage.result.sync import ResultStore
from alsek.types import SupportedMechanismType
from alsek.utils.logging import magic_logger


class Task(BaseTask[P, R]):
    """A task whose messages go through a sync ``Broker``; see ``BaseTask`` for the arguments.

    ``Task[P, R]`` wraps a ``Callable[P, R]``: ``Task[[int, int], int]`` for
    ``def add(a: int, b: int) -> int``.

    Args:
        broker: where its messages go.
        result_store: keeps each message's result (and failure record), if given.
        default_result_ttl: see ``TaskOptions``.

    Decorate a function with ``task(broker)`` rather than building this by hand.
    """

    _alsek_task_kind: ClassVar[Literal["sync", "async"]] = "sync"

    broker: Broker
    result_store: ResultStore | None
    status_tracker: StatusTracker | None

    def __init__(
        self,
        function: Callable[P, R],
        broker: Broker,
        name: str | None = TASK_DEFAULTS.name,
        queue: str | None = TASK_DEFAULTS.queue,
        timeout: int = TASK_DEFAULTS.timeout,
        max_retries: int | None = TASK_DEFAULTS.max_retries,
        backoff: Backoff | None = TASK_DEFAULTS.backoff,
        result_store: ResultStore | None = None,
        default_result_ttl: int | None = TASK_DEFAULTS.default_result_ttl,
        status_tracker: StatusTracker | None = None,
        mechanism: SupportedMechanismType = TASK_DEFAULTS.mechanism,
        run_in_main_thread: bool = TASK_DEFAULTS.run_in_main_thread,
        no_positional_args: bool = TASK_DEFAULTS.no_positional_args,
        *,
        max_age: int | None = TASK_DEFAULTS.max_age,
        throws: tuple[type[BaseException], ...] = TASK_DEFAULTS.throws,
        retry_when: RetryWhen | None = TASK_DEFAULTS.retry_when,
        concurrency_limit: int | None = TASK_DEFAULTS.concurrency_limit,
        concurrency_key: Callable[..., Any] | None = TASK_DEFAULTS.concurrency_key,
        rate_limit: str | RateLimit | None = TASK_DEFAULTS.rate_limit,
    ) -> None:
        super().__init__(
            function=function,
            name=name,
            queue=queue,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            status_tracker=status_tracker,
            mechanism=mechanism,
            run_in_main_thread=run_in_main_thread,
            no_positional_args=no_positional_args,
            max_age=max_age,
            throws=throws,
            retry_when=retry_when,
            concurrency_limit=concurrency_limit,
            concurrency_key=concurrency_key,
            rate_limit=rate_limit,
        )
        self._attach(broker, result_store, default_result_ttl)

    # -- statuses and unshared writes --------------------------------------------------------

    def update_status(self, message: Message, status: TaskStatus) -> None:
        """Write ``status`` through the status tracker, if there is one."""
        if self.status_tracker is not None:
            self.status_tracker.set(message, status=status)

    def write_unshared(
        self,
        message: Message,
        status: TaskStatus,
        result: Any = None,
        *,
        requeued: bool = False,
        skipped: bool = False,
    ) -> None:
        """Write what could not ride along with the broker call that reached ``status``.

        That is the status (and for SUCCEEDED the result unless ``skipped``, for FAILED the
        failure record, for a requeue its removal) of a tracker or store on another Redis
        server than the broker; nothing otherwise. Call it right after the broker call that
        used this task's effects.
        """
        for conn, steps in self._direct_writes(message, status, result, requeued, skipped):
            run(steps, conn)

    def requeue_from_dlq(self, message: Message, ttl: int = DEFAULT_TTL) -> Message:
        """Put this task's dead-lettered ``message`` back in its queue and return it: retries
        reset, the task's current backoff, status SUBMITTED and the failure record cleared in
        the same round trip (so ``ResultStore.get`` waits for the new attempt). With a
        ``max_age`` in force, its age counts from the requeue.

        Raises:
            ValueError: the message belongs to another task.
            MessageDoesNotExistsError: there is no such dead letter.
        """
        options = self._requeue_options(message)
        fresh = self.broker.requeue_from_dlq(self.restart_age(message), ttl, **options)
        self.write_unshared(fresh, TaskStatus.SUBMITTED, requeued=True)
        return fresh

    # -- producing ---------------------------------------------------------------------------

    def _submit(self, message: Message, **options: Any) -> Message | None:
        return self._submit_now(message, **options)

    def _submit_now(self, message: Message, **options: Any) -> Message:
        """Submit with SUBMITTED in the same round trip, then run ``on_submit``; returns the
        message, or the one holding its unique key, which it yielded to (no ``on_submit``)."""
        submit = self._submitter(message)
        standing: Message | None = submit(message, effects=self.submit_effects(message), **options)
        if standing is None or standing is message:
            self._submitted(message)
            return message
        return standing

    def _submitted(self, message: Message) -> None:
        """After the broker took ``message``: the unshared SUBMITTED write, then ``on_submit``."""
        self.write_unshared(message, TaskStatus.SUBMITTED)
        self.on_submit(message)

    @magic_logger(after=_log_generated)
    def generate(
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
        submit: bool = True,
        mechanism: SupportedMechanismType | None = None,
        run_in_main_thread: bool | None = None,
        ready_at: int | None = None,
        **options: Any,
    ) -> Message:
        """Build a message for this task and submit it (SUBMITTED in the same round trip).

        Args:
            args, kwargs: the function's arguments. ``priority``: lower runs first.
            delay, ready_at: when it may run (ms from now / epoch ms).
            result_ttl: how long (ms) its result is kept (needs a result store).
            callback: a message, or a tuple of messages forming a chain, to run after it.
            submit: ``False`` only builds the message (as does deferred mode, once).
            **options: ``max_age``, ``throws`` and ``retry_when`` override the task's for
                this message (they travel in its metadata: ``throws`` and ``retry_when`` must
                be importable, see ``message_options``); ``on_success=message`` and
                ``on_failure=message`` are submitted when it succeeds (with ``result=``) or
                fails for good (with ``exception_type=``, ``exception_message=``);
                ``pipe_ignore=True`` makes it a pipeline step that does not receive the
                previous step's result (``follow_ups``); the rest go to ``broker.submit``
                (e.g. ``ttl``).

        Raises:
            ValidationError: ``result_ttl`` without a result store; ``args`` with
                ``no_positional_args``; arguments the function cannot be called with
                (``message=`` counts as given when the worker passes it).
            ValueError: ``priority`` is not an int >= 0; another field is invalid; a
                ``throws`` or ``retry_when`` override that cannot be imported by path.
            TypeError: a value cannot be serialized (naming the field); nothing was written.
        """
        message, options = self._build_message(
            options, args, kwargs, priority, metadata, result_ttl, uuid, timeout_override,
            delay, previous_result, callback, queue, mechanism, run_in_main_thread, ready_at,
            later=not submit or self.deferred,
        )  # fmt: skip
        if self._submits(submit, [message]):
            message = self._submit(message, **options) or message
        return message

    @magic_logger(after=_log_generated_many)
    def generate_many(
        self,
        args_list: Sequence[Sequence[Any]] | None = None,
        kwargs_list: Sequence[dict[Any, Any]] | None = None,
        **options: Any,
    ) -> list[Message]:
        """One message per item (args tuples and/or kwargs dicts, zipped), submitted together.

        ``options`` are shared by every message: ``generate``'s (``priority``, ``delay``,
        ``metadata``, ``result_ttl``, ``timeout_override``, ``queue``, ``mechanism``,
        ``max_age``, ...) and ``ttl`` for the broker. The messages go in pipelined, chunked
        round trips, each with its SUBMITTED status.

        Raises:
            ValueError: neither list, or lists of different lengths; see also ``generate``.
            MessageAlreadyExistsError: naming uuids that already existed; the rest were written.
        """
        messages, submission = self._plan_many(args_list, kwargs_list, options)
        if submission is not None:
            self.broker.submit_many(messages, effects=submission.effects, **submission.options)
            for message in messages:
                self._submitted(message)
        return messages

    # -- running -----------------------------------------------------------------------------

    def op(self, message: Message) -> Any:
        """Call the function with the message's arguments."""
        args, kwargs = self._call_arguments(message)
        return self.function(*args, **kwargs)

    def execute(self, message: Message) -> Any:
        """Run ``message``: ``op(message)``."""
        return self.op(message)

    def do_retry(self, message: Message, exception: BaseException) -> bool:
        """Retry unless revoked, else as ``retry_verdict`` says (``max_retries``, ``throws``,
        ``retry_when``; see ``message_options``)."""
        return not self.is_revoked(message) and self.retry_verdict(message, exception)

    # -- revocation --------------------------------------------------------------------------

    def revoke(self, message: Message, skip_if_running: bool = False) -> None:
        """Revoke ``message`` in one broker call: flag it, take it out of its queue (DLQ copy
        kept), tell the worker running it, and record FAILED.

        Nothing happens when its status is already terminal, or RUNNING with
        ``skip_if_running`` (a status read just before, so a run that starts in between is
        still revoked).

        Raises:
            AttributeError: ``skip_if_running`` without a status tracker.
        """
        self._check_revoke(skip_if_running)
        status = self._current_status(message)
        if not self._should_revoke(message, status, skip_if_running):
            return
        self._mark_revoked(message)
        if self.broker.revoke(message, effects=self.revocation_effects(message)):
            self.write_unshared(message, TaskStatus.FAILED)

    def _current_status(self, message: Message) -> StatusUpdate | None:
        if self.status_tracker is None:
            return None
        try:
            return self.status_tracker.get(message)
        except KeyError:
            return None

    def is_revoked(self, message: Message) -> bool:
        """Whether ``message`` was revoked."""
        return self.broker.is_revoked(message)


class TriggerTask(TriggerTaskMixin, Task[[], R]):
    """A ``Task`` that submits a message on every firing of ``trigger`` once generated.

    Its function takes no parameters (a firing has none to give), so it is generic in the
    return type only: ``TriggerTask[int]`` wraps a ``Callable[[], int]``.

    See ``TriggerTaskMixin``: the scheduler (a background thread) starts on the first
    ``generate()``, and a tick yields one message however many processes schedule the task.
    """

    def __init__(
        self,
        function: Callable[[], R],
        trigger: TriggerType,
        broker: Broker,
        name: str | None = TASK_DEFAULTS.name,
        queue: str | None = TASK_DEFAULTS.queue,
        timeout: int = TASK_DEFAULTS.timeout,
        max_retries: int | None = TASK_DEFAULTS.max_retries,
        backoff: Backoff | None = TASK_DEFAULTS.backoff,
        result_store: ResultStore | None = None,
        default_result_ttl: int | None = TASK_DEFAULTS.default_result_ttl,
        status_tracker: StatusTracker | None = None,
        mechanism: SupportedMechanismType = TASK_DEFAULTS.mechanism,
        run_in_main_thread: bool | None = None,  # SPEC's default; means False
        no_positional_args: bool = TASK_DEFAULTS.no_positional_args,
        *,
        max_age: int | None = TASK_DEFAULTS.max_age,
        throws: tuple[type[BaseException], ...] = TASK_DEFAULTS.throws,
        retry_when: RetryWhen | None = TASK_DEFAULTS.retry_when,
        concurrency_limit: int | None = TASK_DEFAULTS.concurrency_limit,
        concurrency_key: Callable[..., Any] | None = TASK_DEFAULTS.concurrency_key,
        rate_limit: str | RateLimit | None = TASK_DEFAULTS.rate_limit,
    ) -> None:
        super().__init__(
            function=function,
            trigger=trigger,
            broker=broker,
            name=name,
            queue=queue,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            result_store=result_store,
            default_result_ttl=default_result_ttl,
            status_tracker=status_tracker,
            mechanism=mechanism,
            run_in_main_thread=run_in_main_thread,
            no_positional_args=no_positional_args,
            max_age=max_age,
            throws=throws,
            retry_when=retry_when,
            concurrency_limit=concurrency_limit,
            concurrency_key=concurrency_key,
            rate_limit=rate_limit,
        )

    def _new_scheduler(self) -> BackgroundScheduler:
        return BackgroundScheduler(executors={"default": FireTimeThreadPoolExecutor(1)})

    def _submit(self, message: Message, **options: Any) -> None:
        """Schedule the job that submits a duplicate of ``message`` on every firing.

        Raises:
            SchedulingError: the task is already scheduled.
        """
        self._schedule(_MultiSubmit(self, message, options))

    def _claim_tick(self, message: Message) -> bool:
        """Whether this process is the first to fire ``message``'s tick (it then submits it)."""
        name, ttl = self._tick_marker(message)
        try:
            self.broker.backend.set(name, True, nx=True, ttl=ttl)
        except KeyError:
            return False
        return True
