"""Decorators used by futures and pools to keep expected errors out of their loops."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


def _ignore(error: BaseException) -> None:
    """Default ``on_suppress``: do nothing."""


def suppress_exception(
    *exceptions: type[BaseException],
    on_suppress: Callable[[BaseException], None] = _ignore,
) -> Callable[[F], F]:
    """Make a function return ``None`` instead of raising one of ``exceptions``.

    ``on_suppress`` receives the suppressed exception (to log it, for example). Works on plain
    and ``async def`` functions alike; an ``async def`` stays awaitable.

    Raises:
        TypeError: when no exception class is given, or one of them is not an exception class.
    """
    if not exceptions:
        raise TypeError("suppress_exception() needs at least one exception class")
    for exception in exceptions:
        if not (isinstance(exception, type) and issubclass(exception, BaseException)):
            raise TypeError(f"suppress_exception() expects exception classes, got {exception!r}")

    def decorator(function: F) -> F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await function(*args, **kwargs)
                except exceptions as error:
                    on_suppress(error)
                    return None

            return cast(F, async_wrapper)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except exceptions as error:
                on_suppress(error)
                return None

        return cast(F, wrapper)

    return decorator
