"""alsek's logger, its console setup (passed on to child processes), and ``magic_logger`` for
before/after log lines."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar, cast

from alsek.defaults import LOGGING_DATEFMT, LOGGING_FORMAT

F = TypeVar("F", bound=Callable[..., Any])


def get_logger() -> logging.Logger:
    """The ``"alsek"`` logger; every module logs through a child of it."""
    return logging.getLogger("alsek")


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``setup_logging`` installs: marked, so that another call replaces it and
    leaves handlers of the application's own alone."""


def _console() -> _ConsoleHandler:
    handler = _ConsoleHandler()
    handler.setFormatter(logging.Formatter(fmt=LOGGING_FORMAT, datefmt=LOGGING_DATEFMT))
    return handler


def setup_logging(level: int, root: bool = False) -> None:
    """Send logs to the console (stderr) at ``level``, with exactly one handler, in one format.

    Without ``root``, only alsek's own logs: the ``alsek`` logger gets the handler and does not
    propagate, so the root logger does not print them a second time. With ``root`` (what the
    CLI does), the root logger gets the handler and the level, so the ``logging`` calls of the
    tasks' own code show too, in the same format; alsek's logs reach it by propagation.

    Calling it again replaces the handler rather than adding one, so lines never repeat.
    """
    alsek, root_logger = get_logger(), logging.getLogger()
    for handler in list(alsek.handlers):
        alsek.removeHandler(handler)
    for handler in list(root_logger.handlers):
        if isinstance(handler, _ConsoleHandler):
            root_logger.removeHandler(handler)
    target = root_logger if root else alsek
    target.addHandler(_console())
    target.setLevel(level)
    alsek.setLevel(level)
    alsek.propagate = root


class LogSetup(NamedTuple):
    """What ``setup_logging`` was told in this process, to repeat in a child process (a
    spawned child inherits none of it; a forked one gets fresh handlers)."""

    level: int
    root: bool

    def apply(self) -> None:
        """Set logging up as ``setup_logging(level, root)`` does."""
        setup_logging(self.level, root=self.root)


def current_log_setup() -> LogSetup:
    """How this process logs, as worker pools pass it on to their child processes."""
    root = any(isinstance(h, _ConsoleHandler) for h in logging.getLogger().handlers)
    return LogSetup(get_logger().level, root)


def _nothing() -> None:
    """Default hook: log nothing."""


#: What ``magic_logger`` binds when no hook reads the call's arguments (never passed on).
_UNBOUND: dict[str, Any] = {}


def _accepted(function: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(function).parameters)


def magic_logger(
    before: Callable[..., Any] = _nothing,
    after: Callable[..., Any] = _nothing,
) -> Callable[[F], F]:
    """Call ``before`` ahead of the wrapped function and ``after`` once it has returned.

    ``before`` receives, by keyword, those arguments of the call that its own signature names
    (``self`` is never passed). ``after`` receives ``input_`` (all the call's arguments, defaults
    included, as a dict) and ``output`` (the return value), each only if it names them. When the
    wrapped function is ``async def``, the wrapper is too, and ``after`` runs once the call has
    really finished. ``after`` is skipped when the call raises.
    """
    before_names = _accepted(before)
    after_names = _accepted(after)

    def decorator(function: F) -> F:
        signature = inspect.signature(function)

        # Binding costs more than the call it wraps (``generate``): skip it when neither hook
        # reads the arguments. ``_UNBOUND`` stands for "bound" then, so ``after`` still runs.
        needs_input = before is not _nothing or "input_" in after_names

        def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
            if not needs_input:
                return _UNBOUND
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return None  # let the call itself raise its natural TypeError
            bound.apply_defaults()
            params = dict(bound.arguments)
            params.pop("self", None)
            before(**{k: v for k, v in params.items() if k in before_names})
            return params

        def finish(params: dict[str, Any] | None, output: Any) -> None:
            if params is None:
                return
            offered = {"input_": params, "output": output}
            after(**{k: v for k, v in offered.items() if k in after_names})

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                params = bind(args, kwargs)
                output = await function(*args, **kwargs)
                finish(params, output)
                return output

            return cast(F, async_wrapper)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            params = bind(args, kwargs)
            output = function(*args, **kwargs)
            finish(params, output)
            return output

        return cast(F, wrapper)

    return decorator
