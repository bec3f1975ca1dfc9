"""Middleware: code that runs at named moments of every message's life, for every task of a
broker (``broker.add_middleware(m)``).

A ``Middleware`` overrides the hooks it needs; the others stay no-ops and cost nothing (a
broker keeps, per hook, only the middleware that override it, in the order they were added).
Hooks may be plain methods or, for an ``AsyncBroker``, ``async def`` ones (awaited); a plain
hook in the asyncio pool runs inline on the event loop, so keep it short. A sync ``Broker``
refuses a middleware with ``async def`` hooks: nothing could await them.

A hook that raises is logged and ignored: the message goes on as if the hook had returned. The
exception is ``before_process``, which may raise ``SkipMessage`` (the message is acked without
running), ``Retry`` or ``RateLimitExceeded`` (it is retried as if the task had raised them).

Where each hook runs: ``before_submit``/``after_submit`` in the submitting process (a
callback's, in the worker whose ack submits it); ``before_process`` in the thread, process or
asyncio task that runs the message, with ``current_message()`` set; ``after_process`` once per
started run, before the outcome's hook, by whoever finishes the message (the run itself, or the
stop of a timed-out, revoked or shut-down run); ``after_ack``, ``after_retry`` and
``after_dead_letter`` once the broker accepted that outcome; ``after_revoke`` in the process
whose ``revoke()`` took the message out of its queue; ``worker_boot``/``worker_shutdown`` in
every process that claims and runs messages (each process group of a thread pool, a process
pool's own process, an asyncio pool).

Middleware reaches worker processes with the broker, pickled with ``dill``: keep what cannot
be pickled (clients, sockets) out of ``__init__`` and build it in ``worker_boot``, or lazily.
The process pool's warm children run the message hooks on a copy that no ``worker_boot``
reached (that runs in the pool's process, which claims): build resources lazily there.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from alsek.core.message import Message
from alsek.core.steps.ops import Steps, invoke
from alsek.exceptions import RateLimitExceeded, Retry, SkipMessage

__all__ = ["CONTROL_EXCEPTIONS", "HOOKS", "Middleware", "MiddlewareStack"]

log = logging.getLogger(__name__)

#: Every hook, in the order a message meets them (then the worker's own).
HOOKS = (
    "before_submit",
    "after_submit",
    "before_process",
    "after_process",
    "after_ack",
    "after_retry",
    "after_dead_letter",
    "after_revoke",
    "worker_boot",
    "worker_shutdown",
)

#: What ``before_process`` may raise to steer the message rather than be logged.
CONTROL_EXCEPTIONS = (SkipMessage, Retry, RateLimitExceeded)


class Middleware:
    """Base of every middleware: each hook is a no-op to override (plain or ``async def``).

    Metrics and tracing find here what they need: the message carries its queue, task name,
    uuid, retries and timestamps; ``after_process`` gets the exception; ``before_submit`` may
    write trace context into ``message.metadata`` (it is persisted with the message), and
    ``message.ephemeral_state`` carries in-process state (a start time, a span) from
    ``before_process`` to ``after_process`` of the same run.
    """

    def before_submit(self, message: Message) -> Any:
        """Before ``message`` is written to the broker (it may still be changed)."""

    def after_submit(self, message: Message) -> Any:
        """After the broker took ``message``."""

    def before_process(self, message: Message) -> Any:
        """Before the task runs ``message``, where it runs."""

    def after_process(self, message: Message, result: Any, exception: BaseException | None) -> Any:
        """After the run of ``message`` ended: with its ``result``, or the ``exception`` it
        raised or was stopped with (``TimeoutError``, ``RevokedError``, ``TerminationError``,
        ``WorkerLostError``, ``SkipMessage``...)."""

    def after_ack(self, message: Message) -> Any:
        """After ``message`` was acked: it succeeded (or was skipped)."""

    def after_retry(self, message: Message, exception: BaseException) -> Any:
        """After ``message`` was given back for another attempt (``message.ready_at`` says
        when)."""

    def after_dead_letter(self, message: Message, exception: BaseException) -> Any:
        """After ``message`` failed for good and went to the dead-letter queue."""

    def after_revoke(self, message: Message) -> Any:
        """After ``message`` was revoked (taken out of its queue, its worker told)."""

    def worker_boot(self, pool: Any) -> Any:
        """When a worker ``pool`` starts, before it claims anything."""

    def worker_shutdown(self, pool: Any) -> Any:
        """When a worker ``pool`` stopped, after its last message."""


def _overrides(middleware: Middleware, hook: str) -> bool:
    return getattr(type(middleware), hook) is not getattr(Middleware, hook)


class MiddlewareStack:
    """A broker's middleware, in order, and for each hook the methods that implement it."""

    def __init__(self) -> None:
        self._middleware: list[Middleware] = []
        self._hooks: dict[str, tuple[Callable[..., Any], ...]] = {}
        self._awaited: set[str] = set()  # hooks some middleware implements with ``async def``

    def add(self, middleware: Middleware, allow_async: bool) -> None:
        """Append ``middleware`` (its hooks run after those of the middleware added before).

        Raises:
            TypeError: not a ``Middleware`` instance, or ``async def`` hooks where
                ``allow_async`` is false (a sync broker).
        """
        if isinstance(middleware, type):
            raise TypeError(
                f"add_middleware takes a middleware instance, got the class "
                f"{middleware.__name__}: pass {middleware.__name__}()"
            )
        if not isinstance(middleware, Middleware):
            raise TypeError(
                "add_middleware takes an instance of alsek.core.middleware.Middleware, got "
                f"{type(middleware).__name__}"
            )
        overridden = [hook for hook in HOOKS if _overrides(middleware, hook)]
        coroutines = [
            hook for hook in overridden if inspect.iscoroutinefunction(getattr(middleware, hook))
        ]
        if coroutines and not allow_async:
            raise TypeError(
                f"{type(middleware).__name__} has async def hooks ({', '.join(coroutines)}) "
                "but a sync Broker can only call plain ones: add it to an AsyncBroker, or "
                "make them plain methods"
            )
        self._middleware.append(middleware)
        self._awaited.update(coroutines)
        for hook in overridden:
            self._hooks[hook] = (*self._hooks.get(hook, ()), getattr(middleware, hook))

    def hooks(self, name: str) -> tuple[Callable[..., Any], ...]:
        """The methods implementing hook ``name``, in order (empty: nothing to call)."""
        return self._hooks.get(name, ())

    def plain(self, name: str) -> bool:
        """Whether every method of hook ``name`` is a plain one: then they are called directly
        (``call_hooks``), without a driver, which costs a run a few microseconds less each."""
        return name not in self._awaited

    def __iter__(self) -> Iterator[Middleware]:
        return iter(self._middleware)

    def __len__(self) -> int:
        return len(self._middleware)


def hooks_of(broker: Any, name: str) -> tuple[Callable[..., Any], ...]:
    """The methods implementing hook ``name`` on ``broker``'s middleware (none for an object
    without middleware)."""
    stack = getattr(broker, "_middleware", None)
    return stack.hooks(name) if stack is not None else ()


def plain_hooks_of(broker: Any, name: str) -> tuple[Callable[..., Any], ...] | None:
    """The methods of hook ``name`` on ``broker``'s middleware when all are plain ones (to call
    with ``call_hooks``), else ``None`` (some must be awaited: through a driver)."""
    stack = getattr(broker, "_middleware", None)
    if stack is None:
        return ()
    return stack.hooks(name) if stack.plain(name) else None


def _describe(hook: Callable[..., Any]) -> str:
    owner = getattr(hook, "__self__", None)
    prefix = f"{type(owner).__name__}." if owner is not None else ""
    return f"{prefix}{getattr(hook, '__name__', repr(hook))}"


def report_hook_failure(hook: Callable[..., Any], error: Exception) -> None:
    """Log a hook that raised (and go on as if it had returned)."""
    log.error(
        "Middleware hook %s raised %s: %s (ignored)",
        _describe(hook),
        type(error).__name__,
        error,
        exc_info=error,
    )


def hook_steps(hooks: Sequence[Callable[..., Any]], *args: Any) -> Steps[None]:
    """Call each hook with ``args``; one that raises is logged and the rest still run."""
    for hook in hooks:
        try:
            yield invoke(hook, *args)
        except Exception as error:
            report_hook_failure(hook, error)


def call_before_process(
    hooks: Sequence[Callable[..., Any]], message: Message
) -> BaseException | None:
    """Call each plain ``before_process`` hook right here, as ``before_process_steps`` would."""
    for hook in hooks:
        try:
            hook(message)
        except CONTROL_EXCEPTIONS as control:
            return control
        except Exception as error:
            report_hook_failure(hook, error)
    return None


def before_process_steps(
    hooks: Sequence[Callable[..., Any]], message: Message
) -> Steps[BaseException | None]:
    """Call each ``before_process`` hook; returns the control exception one raised (the rest are
    not called then), else ``None``."""
    for hook in hooks:
        try:
            yield invoke(hook, message)
        except CONTROL_EXCEPTIONS as control:
            return control
        except Exception as error:
            report_hook_failure(hook, error)
    return None
