"""``AsyncTask`` and ``AsyncTriggerTask``: the asyncio I/O shells over ``BaseTask``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from alsek.core.backoff import Backoff
from alsek.core.broker import AsyncBroker
from alsek.core.message import Message
from alsek.core.status.asyncio import AsyncStatusTracker
from alsek.core.status.types import StatusUpdate, TaskStatus
from alsek.core.steps.drivers import async_run
from alsek.core.task.base import BaseTask, P, R
from alsek.core.task.generating import _log_generated, _log_generated_many
from alsek.core.task.message_options import RetryWhen
from alsek.core.task.options import TASK_DEFAULTS
from alsek.core.task.triggers import (
    FireTimeAsyncIOExecutor,
    TriggerTaskMixin,
    TriggerType,
    _AsyncMultiSubmit,
)
from alsek.core.task_limits import RateLimit
from alsek.defaults import DEFAULT_TTL
from alsek.storage.result.asyncio import AsyncResultStore
from alsek.types import SupportedMechanismType
from alsek.utils.logging import magic_logger


class AsyncTask(BaseTask[P, R]):
    """The asyncio twin of ``Task``: the same arguments with an ``AsyncBroker`` (and async
    tracker and store); every I/O method and hook is awaitable (``do_callback`` is not).

    The function may be ``async def`` (awaited) or plain (run on the event loop, blocking it).
    ``AsyncTask[P, R]`` wraps a ``Callable[P, R]``, so for ``async def add(a: int, b: int) ->
    int`` it is ``AsyncTask[[int, int], Coroutine[Any, Any, int]]``: calling the task runs the
    function inline and returns what it returns, the coroutine.
    """

    _alsek_task_kind: ClassVar[Literal["sync", "async"]] = "async"

    broker: AsyncBroker
    result_store: AsyncResultStore | None
    status_tracker: AsyncStatusTracker | None

    def __init__(
        self,
        function: Callable[P, R],
        broker: AsyncBroker,
        name: str | None = TASK_DEFAULTS.name,
        queue: str | None = TASK_DEFAULTS.queue,
        timeout: int = TASK_DEFAULTS.timeout,
        max_retries: int | None = TASK_DEFAULTS.max_retries,
        backoff: Backoff | None = TASK_DEFAULTS.backoff,
        result_store: AsyncResultStore | None = None,
        default_result_ttl: int | None = TASK_DEFAULTS.default_result_ttl,
        status_tracker: AsyncStatusTracker | None = None,
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

    # -- hooks: awaitable no-ops to override -------------------------------------------------

    async def pre_op(self, message: Message) -> None:
        """See ``BaseTask.pre_op``."""

    async def post_op(self, message: Message, result: Any) -> None:
        """See ``BaseTask.post_op``."""

    async def on_submit(self, message: Message) -> None:
        """See ``BaseTask.on_submit``."""

    async def on_revocation(
        self, message: Message, exception: BaseException | None, result: Any
    ) -> None:
        """See ``BaseTask.on_revocation``."""

    async def on_retry(self, message: Message, exception: BaseException) -> None:
        """See ``BaseTask.on_retry``."""

    async def on_failure(self, message: Message, exception: BaseException) -> None:
        """See ``BaseTask.on_failure``."""

    async def on_success(self, message: Message, result: Any) -> None:
        """See ``BaseTask.on_success``."""

    # -- statuses and unshared writes --------------------------------------------------------

    async def update_status(self, message: Message, status: TaskStatus) -> None:
        """Write ``status`` through the status tracker, if there is one."""
        if self.status_tracker is not None:
            await self.status_tracker.set(message, status=status)

    async def write_unshared(
        self,
        message: Message,
        status: TaskStatus,
        result: Any = None,
        *,
        requeued: bool = False,
        skipped: bool = False,
    ) -> None:
        """See ``Task.write_unshared``."""
        for conn, steps in self._direct_writes(message, status, result, requeued, skipped):
            await async_run(steps, conn)

    async def requeue_from_dlq(self, message: Message, ttl: int = DEFAULT_TTL) -> Message:
        """See ``Task.requeue_from_dlq``."""
        options = self._requeue_options(message)
        fresh = await self.broker.requeue_from_dlq(self.restart_age(message), ttl, **options)
        await self.write_unshared(fresh, TaskStatus.SUBMITTED, requeued=True)
        return fresh

    # -- producing ---------------------------------------------------------------------------

    async def _submit(self, message: Message, **options: Any) -> Message | None:
        return await self._submit_now(message, **options)

    async def _submit_now(self, message: Message, **options: Any) -> Message:
        """Submit with SUBMITTED in the same round trip, then run ``on_submit``; returns the
        message, or the one holding its unique key, which it yielded to (no ``on_submit``)."""
        submit = self._submitter(message)
        standing: Message | None = await submit(
            message, effects=self.submit_effects(message), **options
        )
        if standing is None or standing is message:
            await self._submitted(message)
            return message
        return standing

    async def _submitted(self, message: Message) -> None:
        """After the broker took ``message``: the unshared SUBMITTED write, then ``on_submit``."""
        await self.write_unshared(message, TaskStatus.SUBMITTED)
        await self.on_submit(message)

    @magic_logger(after=_log_generated)
    async def generate(
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
        """See ``Task.generate``."""
        message, options = self._build_message(
            options, args, kwargs, priority, metadata, result_ttl, uuid, timeout_override,
            delay, previous_result, callback, queue, mechanism, run_in_main_thread, ready_at,
            later=not submit or self.deferred,
        )  # fmt: skip
        if self._submits(submit, [message]):
            message = await self._submit(message, **options) or message
        return message

    @magic_logger(after=_log_generated_many)
    async def generate_many(
        self,
        args_list: Sequence[Sequence[Any]] | None = None,
        kwargs_list: Sequence[dict[Any, Any]] | None = None,
        **options: Any,
    ) -> list[Message]:
        """See ``Task.generate_many``."""
        messages, submission = self._plan_many(args_list, kwargs_list, options)
        if submission is not None:
            await self.broker.submit_many(
                messages, effects=submission.effects, **submission.options
            )
            for message in messages:
                await self._submitted(message)
        return messages

    # -- running -----------------------------------------------------------------------------

    async def op(self, message: Message) -> Any:
        """Call the function with the message's arguments, and await it if it is async."""
        args, kwargs = self._call_arguments(message)
        result = self.function(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def execute(self, message: Message) -> Any:
        """Run ``message``: ``await op(message)``."""
        return await self.op(message)

    async def do_retry(self, message: Message, exception: BaseException) -> bool:
        """Retry unless revoked, else as ``retry_verdict`` says (``max_retries``, ``throws``,
        ``retry_when``; see ``message_options``)."""
        return not await self.is_revoked(message) and self.retry_verdict(message, exception)

    # -- revocation --------------------------------------------------------------------------

    async def revoke(self, message: Message, skip_if_running: bool = False) -> None:
        """See ``Task.revoke``."""
        self._check_revoke(skip_if_running)
        status = await self._current_status(message)
        if not self._should_revoke(message, status, skip_if_running):
            return
        self._mark_revoked(message)
        if await self.broker.revoke(message, effects=self.revocation_effects(message)):
            await self.write_unshared(message, TaskStatus.FAILED)

    async def _current_status(self, message: Message) -> StatusUpdate | None:
        if self.status_tracker is None:
            return None
        try:
            return await self.status_tracker.get(message)
        except KeyError:
            return None

    async def is_revoked(self, message: Message) -> bool:
        """Whether ``message`` was revoked."""
        return await self.broker.is_revoked(message)


class AsyncTriggerTask(TriggerTaskMixin, AsyncTask[[], R]):
    """An ``AsyncTask`` that submits a message on every firing of ``trigger`` once generated.

    Like ``TriggerTask``, generic in the return type only (its function takes no parameters).

    Its ``AsyncIOScheduler`` starts on the first ``await generate()``, inside the running loop;
    a tick yields one message however many processes schedule the task.
    """

    def __init__(
        self,
        function: Callable[[], R],
        trigger: TriggerType,
        broker: AsyncBroker,
        name: str | None = TASK_DEFAULTS.name,
        queue: str | None = TASK_DEFAULTS.queue,
        timeout: int = TASK_DEFAULTS.timeout,
        max_retries: int | None = TASK_DEFAULTS.max_retries,
        backoff: Backoff | None = TASK_DEFAULTS.backoff,
        result_store: AsyncResultStore | None = None,
        default_result_ttl: int | None = TASK_DEFAULTS.default_result_ttl,
        status_tracker: AsyncStatusTracker | None = None,
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

    def _new_scheduler(self) -> AsyncIOScheduler:
        return AsyncIOScheduler(executors={"default": FireTimeAsyncIOExecutor()})

    async def _submit(self, message: Message, **options: Any) -> None:
        """Schedule the job that submits a duplicate of ``message`` on every firing.

        Raises:
            SchedulingError: the task is already scheduled.
        """
        # A bound coroutine method, so APScheduler runs it on the loop rather than in a thread.
        self._schedule(_AsyncMultiSubmit(self, message, options).__call__)

    async def _claim_tick(self, message: Message) -> bool:
        """Whether this process is the first to fire ``message``'s tick (it then submits it)."""
        name, ttl = self._tick_marker(message)
        try:
            await self.broker.backend.set(name, True, nx=True, ttl=ttl)
        except KeyError:
            return False
        return True
