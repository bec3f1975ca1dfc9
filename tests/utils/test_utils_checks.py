"""utils.checks: awaitable detection and duplicate detection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any

from alsek.utils.checks import await_required, has_duplicates


async def _coroutine_function() -> int:
    return 1


async def _async_generator_function() -> AsyncIterator[int]:
    yield 1


class _Awaitable:
    def __await__(self) -> Generator[Any, None, int]:
        yield
        return 1


def test_await_required_for_a_coroutine() -> None:
    coroutine = _coroutine_function()
    try:
        assert await_required(coroutine)
    finally:
        coroutine.close()


def test_await_required_for_an_async_generator_function() -> None:
    assert await_required(_async_generator_function)


def test_await_required_for_an_object_with_dunder_await() -> None:
    assert await_required(_Awaitable())


def test_await_not_required_for_plain_values_and_functions() -> None:
    assert not await_required(1)
    assert not await_required("text")
    assert not await_required(len)


def test_await_not_required_for_a_coroutine_function_itself() -> None:
    assert not await_required(_coroutine_function)


def test_has_duplicates_detects_repeats() -> None:
    assert has_duplicates([1, 2, 1])


def test_has_duplicates_false_for_distinct_items() -> None:
    assert not has_duplicates(["a", "b", "c"])


def test_has_duplicates_false_for_empty_collection() -> None:
    assert not has_duplicates([])


def test_has_duplicates_handles_unhashable_items() -> None:
    assert has_duplicates([{"a": 1}, {"a": 1}])
    assert not has_duplicates([{"a": 1}, {"a": 2}])
