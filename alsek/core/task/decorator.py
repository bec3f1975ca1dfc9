"""``task(...)``: turn a function into a task.

The class follows the function and the broker: ``Task`` for a plain function on a ``Broker``,
``AsyncTask`` for an ``async def`` function on an ``AsyncBroker``, and their trigger variants
when a trigger is given. ``base_task`` overrides the choice. Mixing kinds without ``base_task``
is refused, because each mix is a mistake more often than not:

* an ``async def`` function on a sync ``Broker`` would hand workers a coroutine nobody awaits;
* a plain function on an ``AsyncBroker`` would run on the event loop and block it. Make it
  ``async def``, or pass ``base_task=AsyncTask`` to accept that.

For type checkers, ``task`` is overloaded so the decorated name has the class the runtime
builds, parameterised by the function: ``Task[P, R]`` for a ``def`` (``add(1, 2)`` is an
``int``, ``add.generate(...)`` a ``Message``), ``AsyncTask[P, R]`` for an ``async def`` (``R``
is its coroutine; ``generate`` is awaitable), ``TriggerTask[R]`` / ``AsyncTriggerTask[R]``
with a trigger, and the ``base_task`` given (as ``Task`` or ``AsyncTask``) otherwise. SPEC
§13.6 has ``broker`` required, so the decorator is always called: ``@task(broker)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar, overload

from alsek.core.backoff import Backoff
from alsek.core.broker import BaseBroker
from alsek.core.status.base import BaseStatusTracker
from alsek.core.task.asyncio import AsyncTask, AsyncTriggerTask
from alsek.core.task.base import BaseTask, P, R
from alsek.core.task.message_options import RetryWhen
from alsek.core.task.options import TASK_DEFAULTS, TaskOptions
from alsek.core.task.sync import Task, TriggerTask
from alsek.core.task.triggers import TriggerType
from alsek.core.task_limits import RateLimit
from alsek.storage.result._base import BaseResultStore
from alsek.types import SupportedMechanismType

#: What an ``async def`` function's coroutine resolves to.
T = TypeVar("T")


class TaskDecorator(Protocol):
    """What ``task(broker, ...)`` returns: it makes an ``async def`` function an ``AsyncTask``
    and any other function a ``Task`` (as the runtime does, by ``iscoroutinefunction``)."""

    # An ``async def`` function also fits ``Callable[P, R]``; the first match is the right one.
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, function: Callable[P, Coroutine[Any, Any, T]]
    ) -> AsyncTask[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, function: Callable[P, R]) -> Task[P, R]: ...


class TriggerTaskDecorator(Protocol):
    """What ``task(broker, trigger=...)`` returns: the trigger twin of ``TaskDecorator``, for
    functions without parameters."""

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, function: Callable[[], Coroutine[Any, Any, T]]
    ) -> AsyncTriggerTask[Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, function: Callable[[], R]) -> TriggerTask[R]: ...


def _parse_base_task(
    base_task: type[BaseTask[Any, Any]] | None,
    trigger: TriggerType | None = None,
    is_async: bool = False,
) -> type[BaseTask[Any, Any]]:
    """The class ``task()`` builds: ``base_task`` when given, else the (trigger) task class of
    the right kind.

    Raises:
        ValueError: a trigger is given but the class takes none.
    """
    chosen: type[BaseTask[Any, Any]]
    if base_task is not None:
        chosen = base_task
    elif is_async:
        chosen = AsyncTask if trigger is None else AsyncTriggerTask
    else:
        chosen = Task if trigger is None else TriggerTask
    if trigger is not None and "trigger" not in inspect.signature(chosen.__init__).parameters:
        raise ValueError(f"Trigger not supported by {chosen.__name__}")
    return chosen


def _is_async(function: Callable[..., Any], broker: BaseBroker) -> bool:
    """Whether ``function`` and ``broker`` call for an async task; refuses a mix of kinds."""
    async_function = inspect.iscoroutinefunction(function)
    async_broker = bool(broker.backend.IS_ASYNC)
    name = getattr(function, "__name__", repr(function))
    if async_function and not async_broker:
        raise ValueError(
            f"{name!r} is async def but {type(broker).__name__} is sync: use an AsyncBroker, "
            "or a plain function"
        )
    if async_broker and not async_function:
        raise ValueError(
            f"{name!r} is not async def but the broker is an {type(broker).__name__}: make it "
            "async def, or pass base_task=AsyncTask to run it on the event loop (blocking it)"
        )
    return async_function


# The overloads repeat the parameters (with their defaults) so that editors show them; the
# implementation below is the one ``tests/task/test_task_options.py`` holds to SPEC. The first
# has no ``trigger`` at all: APScheduler ships no types, so a trigger is ``Any`` to a checker,
# which would match ``trigger: None`` as well and make the result ``Any``. (The flip side:
# ``trigger=None`` written out is read as the trigger overload.)


@overload
def task(
    broker: BaseBroker,
    name: str | None = TASK_DEFAULTS.name,
    queue: str | None = TASK_DEFAULTS.queue,
    timeout: int = TASK_DEFAULTS.timeout,
    max_retries: int | None = TASK_DEFAULTS.max_retries,
    backoff: Backoff | None = TASK_DEFAULTS.backoff,
    *,
    result_store: BaseResultStore | None = None,
    default_result_ttl: int | None = TASK_DEFAULTS.default_result_ttl,
    status_tracker: BaseStatusTracker | None = None,
    mechanism: SupportedMechanismType = TASK_DEFAULTS.mechanism,
    run_in_main_thread: bool | None = None,
    no_positional_args: bool = TASK_DEFAULTS.no_positional_args,
    base_task: None = None,
    max_age: int | None = TASK_DEFAULTS.max_age,
    throws: tuple[type[BaseException], ...] = TASK_DEFAULTS.throws,
    retry_when: RetryWhen | None = TASK_DEFAULTS.retry_when,
    concurrency_limit: int | None = TASK_DEFAULTS.concurrency_limit,
    concurrency_key: Callable[..., Any] | None = TASK_DEFAULTS.concurrency_key,
    rate_limit: str | RateLimit | None = TASK_DEFAULTS.rate_limit,
) -> TaskDecorator: ...


@overload
def task(
    broker: BaseBroker,
    name: str | None = TASK_DEFAULTS.name,
    queue: str | None = TASK_DEFAULTS.queue,
    timeout: int = TASK_DEFAULTS.timeout,
    max_retries: int | None = TASK_DEFAULTS.max_retries,
    backoff: Backoff | None = TASK_DEFAULTS.backoff,
    *,
    trigger: TriggerType,
    result_store: BaseResultStore | None = None,
    default_result_ttl: int | None = TASK_DEFAULTS.default_result_ttl,
    status_tracker: BaseStatusTracker | None = None,
    mechanism: SupportedMechanismType = TASK_DEFAULTS.mechanism,
    run_in_main_thread: bool | None = None,
    no_positional_args: bool = TASK_DEFAULTS.no_positional_args,
    base_task: None = None,
    max_age: int | None = TASK_DEFAULTS.max_age,
    throws: tuple[type[BaseException], ...] = TASK_DEFAULTS.throws,
    retry_when: RetryWhen | None = TASK_DEFAULTS.retry_when,
    concurrency_limit: int | None = TASK_DEFAULTS.concurrency_limit,
    concurrency_key: Callable[..., Any] | None = TASK_DEFAULTS.concurrency_key,
    rate_limit: str | RateLimit | None = TASK_DEFAULTS.rate_limit,
) -> TriggerTaskDecorator: ...


@overload
def task(
    broker: BaseBroker,
    name: str | None = TASK_DEFAULTS.name,
    queue: str | None = TASK_DEFAULTS.queue,
    timeout: int = TASK_DEFAULTS.timeout,
    max_retries: int | None = TASK_DEFAULTS.max_retries,
    backoff: Backoff | None = TASK_DEFAULTS.backoff,
    trigger: TriggerType | None = None,
    result_store: BaseResultStore | None = None,
    default_result_ttl: int | None = TASK_DEFAULTS.default_result_ttl,
    status_tracker: BaseStatusTracker | None = None,
    mechanism: SupportedMechanismType = TASK_DEFAULTS.mechanism,
    run_in_main_thread: bool | None = None,
    no_positional_args: bool = TASK_DEFAULTS.no_positional_args,
    *,
    base_task: type[AsyncTask[Any, Any]],
    max_age: int | None = TASK_DEFAULTS.max_age,
    throws: tuple[type[BaseException], ...] = TASK_DEFAULTS.throws,
    retry_when: RetryWhen | None = TASK_DEFAULTS.retry_when,
    concurrency_limit: int | None = TASK_DEFAULTS.concurrency_limit,
    concurrency_key: Callable[..., Any] | None = TASK_DEFAULTS.concurrency_key,
    rate_limit: str | RateLimit | None = TASK_DEFAULTS.rate_limit,
) -> Callable[[Callable[P, R]], AsyncTask[P, R]]: ...


@overload
def task(
    broker: BaseBroker,
    name: str | None = TASK_DEFAULTS.name,
    queue: str | None = TASK_DEFAULTS.queue,
    timeout: int = TASK_DEFAULTS.timeout,
    max_retries: int | None = TASK_DEFAULTS.max_retries,
    backoff: Backoff | None = TASK_DEFAULTS.backoff,
    trigger: TriggerType | None = None,
    result_store: BaseResultStore | None = None,
    default_result_ttl: int | None = TASK_DEFAULTS.default_result_ttl,
    status_tracker: BaseStatusTracker | None = None,
    mechanism: SupportedMechanismType = TASK_DEFAULTS.mechanism,
    run_in_main_thread: bool | None = None,
    no_positional_args: bool = TASK_DEFAULTS.no_positional_args,
    *,
    base_task: type[Task[Any, Any]],
    max_age: int | None = TASK_DEFAULTS.max_age,
    throws: tuple[type[BaseException], ...] = TASK_DEFAULTS.throws,
    retry_when: RetryWhen | None = TASK_DEFAULTS.retry_when,
    concurrency_limit: int | None = TASK_DEFAULTS.concurrency_limit,
    concurrency_key: Callable[..., Any] | None = TASK_DEFAULTS.concurrency_key,
    rate_limit: str | RateLimit | None = TASK_DEFAULTS.rate_limit,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(
    broker: BaseBroker,
    name: str | None = TASK_DEFAULTS.name,
    queue: str | None = TASK_DEFAULTS.queue,
    timeout: int = TASK_DEFAULTS.timeout,
    max_retries: int | None = TASK_DEFAULTS.max_retries,
    backoff: Backoff | None = TASK_DEFAULTS.backoff,
    trigger: TriggerType | None = None,
    result_store: BaseResultStore | None = None,
    default_result_ttl: int | None = TASK_DEFAULTS.default_result_ttl,
    status_tracker: BaseStatusTracker | None = None,
    mechanism: SupportedMechanismType = TASK_DEFAULTS.mechanism,
    run_in_main_thread: bool | None = None,  # SPEC's default; means False
    no_positional_args: bool = TASK_DEFAULTS.no_positional_args,
    base_task: type[Task[Any, Any]] | type[AsyncTask[Any, Any]] | None = None,
    *,
    max_age: int | None = TASK_DEFAULTS.max_age,
    throws: tuple[type[BaseException], ...] = TASK_DEFAULTS.throws,
    retry_when: RetryWhen | None = TASK_DEFAULTS.retry_when,
    concurrency_limit: int | None = TASK_DEFAULTS.concurrency_limit,
    concurrency_key: Callable[..., Any] | None = TASK_DEFAULTS.concurrency_key,
    rate_limit: str | RateLimit | None = TASK_DEFAULTS.rate_limit,
) -> Callable[[Callable[..., Any]], BaseTask[Any, Any]]:
    """Decorate a function to make it a task: ``@task(broker)`` then ``f.generate(args=...)``.

    The arguments are ``TaskOptions``' (their defaults too), plus ``trigger`` (a trigger task
    submits a message on each firing) and ``base_task`` (the class to build; default chosen
    as the module docstring says). Calling the task runs the function inline.

    Raises:
        ValueError: an unsupported mechanism; a trigger for a class that takes none; a sync
            function with an async broker or the reverse (without ``base_task``); a
            ``max_age`` that is not an int of ms > 0.
        TypeError: ``throws`` items that are not exception classes; a ``retry_when`` that is
            not callable.
    """
    options = TaskOptions(
        name=name,
        queue=queue,
        timeout=timeout,
        max_retries=max_retries,
        backoff=backoff,
        default_result_ttl=default_result_ttl,
        mechanism=mechanism,  # checked here, before any function is decorated
        run_in_main_thread=bool(run_in_main_thread),
        no_positional_args=no_positional_args,
        max_age=max_age,
        throws=throws,
        retry_when=retry_when,
        concurrency_limit=concurrency_limit,
        concurrency_key=concurrency_key,
        rate_limit=rate_limit,
    )
    settings: dict[str, Any] = {
        "broker": broker,
        "result_store": result_store,
        "status_tracker": status_tracker,
        **({} if trigger is None else {"trigger": trigger}),
        **options.as_kwargs(),
    }

    def wrapper(function: Callable[..., Any]) -> BaseTask[Any, Any]:
        is_async = False if base_task is not None else _is_async(function, broker)
        task_class = _parse_base_task(base_task, trigger=trigger, is_async=is_async)
        return task_class(function=function, **settings)

    return wrapper
