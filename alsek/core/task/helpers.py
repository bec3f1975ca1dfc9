"""Small pieces the task classes use: callbacks, argument inspection, trigger jobs, class choice.

Callback chains: ``parse_callback`` folds a tuple of messages into one nested chain, and
``build_callback_message`` builds the next message of a chain once its parent succeeded (the
worker submits it). Trigger jobs: ``_MultiSubmit`` / ``_AsyncMultiSubmit`` run on every firing,
and the fire-time executors hand them the scheduled time of the firing, which APScheduler 3 does
not pass to jobs itself.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from copy import deepcopy
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.executors.pool import ThreadPoolExecutor

from alsek.core.message import Message
from alsek.exceptions import MessageAlreadyExistsError

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.date import DateTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    from alsek.core.task.asyncio import AsyncTriggerTask
    from alsek.core.task.base import BaseTask
    from alsek.core.task.sync import TriggerTask

log = logging.getLogger(__name__)


# -- callbacks ---------------------------------------------------------------------------------


def parse_callback(callback: Message | tuple[Message, ...]) -> Message:
    """One message standing for a callback or a chain of callbacks.

    A tuple ``(a, b, c)`` becomes the chain a → b → c **in place**: ``b`` is nested in ``a``'s
    ``callback_message_data`` and ``c`` in ``b``'s. ``a`` is returned.

    Raises:
        TypeError: an item is not a ``Message``.
        ValueError: the tuple is empty.
        AttributeError: a message of the tuple already has a callback.
    """
    if isinstance(callback, Message):
        return callback
    callbacks = tuple(callback)
    if not callbacks:
        raise ValueError("callback is an empty tuple; give a message or a tuple of messages")
    for item in callbacks:
        if not isinstance(item, Message):
            raise TypeError(f"callback items must be Messages, got {type(item).__name__}")
        if item.callback_message_data:
            raise AttributeError(
                f"{item.summary} already has a callback; a tuple forms the chain by itself"
            )
    for i in range(len(callbacks) - 1, 0, -1):
        callbacks[i - 1].update(callback_message_data=callbacks[i].data)
    return callbacks[0]


def build_callback_message(parent: Message, result: Any) -> Message | None:
    """The next message of ``parent``'s chain, carrying ``result``; ``None`` without a chain.

    It gets ``previous_result=result``, ``previous_message_uuid=parent.uuid`` and the chain's
    ``progenitor_uuid`` (the parent's, or the parent itself when it started the chain); its own
    ``callback_message_data`` carries the rest of the chain. Nothing is written.
    """
    if not parent.callback_message_data:
        return None
    return Message(**deepcopy(parent.callback_message_data)).update(
        previous_result=result,
        previous_message_uuid=parent.uuid,
        progenitor_uuid=parent.progenitor_uuid or parent.uuid,
    )


def expects_message(function: Callable[..., Any]) -> bool:
    """Whether ``function`` takes a ``message`` parameter, unannotated or annotated ``Message``.

    A string annotation (``from __future__ import annotations``) counts when it names
    ``Message``, qualified or not.
    """
    try:
        parameter = inspect.signature(function).parameters.get("message")
    except (TypeError, ValueError):  # builtins and the like have no signature to read
        return False
    if parameter is None:
        return False
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty or annotation is Message:
        return True
    if not isinstance(annotation, str):
        return False
    return annotation.strip("'\"").rsplit(".", 1)[-1] == "Message"


# -- trigger jobs ------------------------------------------------------------------------------


def _already_fired(message: Message) -> None:
    log.debug("Trigger tick of %s was submitted by another process", message.summary)


class _MultiSubmit:
    """The job a ``TriggerTask`` schedules: each firing submits one new message for its tick.

    The message is ``message`` (the template) duplicated under the tick's uuid. Only the process
    that wins the tick's marker in Redis submits it; the broker's duplicate detection backs that
    up. ``options`` go to ``broker.submit`` (e.g. ``ttl``).
    """

    def __init__(self, task: TriggerTask, message: Message, options: dict[str, Any]) -> None:
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

    def __init__(self, task: AsyncTriggerTask, message: Message, options: dict[str, Any]) -> None:
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


class FireTimeThreadPoolExecutor(_FireTimeMixin, ThreadPoolExecutor):
    """APScheduler's thread pool executor, passing ``fire_time`` to the job."""


class FireTimeAsyncIOExecutor(_FireTimeMixin, AsyncIOExecutor):
    """APScheduler's asyncio executor, passing ``fire_time`` to the job."""


# -- choosing the task class -------------------------------------------------------------------


def _parse_base_task(
    base_task: type[BaseTask] | None,
    trigger: CronTrigger | DateTrigger | IntervalTrigger | None = None,
    is_async: bool = False,
) -> type[BaseTask]:
    """The class ``task()`` builds: ``base_task`` when given, else the (trigger) task class of
    the right kind.

    Raises:
        ValueError: a trigger is given but the class takes none.
    """
    # The task classes import this module, so they are imported when first needed.
    from alsek.core.task.asyncio import AsyncTask, AsyncTriggerTask
    from alsek.core.task.sync import Task, TriggerTask

    chosen: type[BaseTask]
    if base_task is not None:
        chosen = base_task
    elif is_async:
        chosen = AsyncTask if trigger is None else AsyncTriggerTask
    else:
        chosen = Task if trigger is None else TriggerTask
    if trigger is not None and "trigger" not in inspect.signature(chosen.__init__).parameters:
        raise ValueError(f"Trigger not supported by {chosen.__name__}")
    return chosen
