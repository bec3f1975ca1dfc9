"""utils.decorators.suppress_exception."""

from __future__ import annotations

import inspect

import pytest

from alsek.utils.decorators import suppress_exception


def test_listed_exception_is_suppressed_and_returns_none() -> None:
    @suppress_exception(KeyError)
    def boom() -> int:
        raise KeyError("x")

    assert boom() is None


def test_on_suppress_receives_the_exception() -> None:
    seen: list[BaseException] = []

    @suppress_exception(KeyError, ValueError, on_suppress=seen.append)
    def boom() -> None:
        raise ValueError("bad")

    boom()
    assert len(seen) == 1
    assert isinstance(seen[0], ValueError)
    assert str(seen[0]) == "bad"


def test_unlisted_exception_propagates() -> None:
    @suppress_exception(KeyError)
    def boom() -> None:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        boom()


def test_return_value_passes_through_when_nothing_is_raised() -> None:
    @suppress_exception(KeyError)
    def add(a: int, b: int = 2) -> int:
        return a + b

    assert add(1, b=5) == 6
    assert add.__name__ == "add"


async def test_async_function_stays_awaitable_and_is_suppressed() -> None:
    seen: list[BaseException] = []

    @suppress_exception(KeyError, on_suppress=seen.append)
    async def boom() -> int:
        raise KeyError("x")

    assert inspect.iscoroutinefunction(boom)
    assert await boom() is None
    assert isinstance(seen[0], KeyError)


async def test_async_function_result_passes_through() -> None:
    @suppress_exception(KeyError)
    async def value() -> int:
        return 7

    assert await value() == 7


def test_no_exception_classes_is_rejected() -> None:
    with pytest.raises(TypeError, match="at least one exception class"):
        suppress_exception()


def test_non_exception_argument_is_rejected() -> None:
    with pytest.raises(TypeError, match="'oops'"):
        suppress_exception("oops")  # type: ignore[arg-type]
