"""utils.logging: the alsek logger, its setup, and magic_logger."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from alsek.defaults import LOGGING_DATEFMT, LOGGING_FORMAT
from alsek.utils.logging import (
    LogSetup,
    current_log_setup,
    get_logger,
    magic_logger,
    setup_logging,
)


@pytest.fixture
def restore_alsek_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("alsek")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_get_logger_returns_the_alsek_logger() -> None:
    assert get_logger() is logging.getLogger("alsek")


def test_setup_logging_installs_one_formatted_stream_handler(
    restore_alsek_logger: logging.Logger,
) -> None:
    setup_logging(logging.DEBUG)
    (handler,) = restore_alsek_logger.handlers
    assert isinstance(handler, logging.StreamHandler)
    assert handler.formatter is not None
    assert handler.formatter._fmt == LOGGING_FORMAT
    assert handler.formatter.datefmt == LOGGING_DATEFMT
    assert restore_alsek_logger.level == logging.DEBUG
    assert restore_alsek_logger.propagate is False


def test_setup_logging_twice_keeps_a_single_handler(restore_alsek_logger: logging.Logger) -> None:
    setup_logging(logging.INFO)
    setup_logging(logging.WARNING)
    assert len(restore_alsek_logger.handlers) == 1
    assert restore_alsek_logger.level == logging.WARNING


@pytest.fixture
def restore_root_logger(restore_alsek_logger: logging.Logger) -> Iterator[logging.Logger]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield root
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_root_setup_shows_the_applications_loggers_in_alsek_format(
    restore_root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging(logging.INFO, root=True)
    logging.getLogger("myapp.billing").info("charged %s", 42)
    get_logger().getChild("core").info("from alsek")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("[INFO] myapp.billing: charged 42")
    assert lines[1].endswith("[INFO] alsek.core: from alsek")
    assert restore_root_logger.level == logging.INFO
    assert get_logger().handlers == []
    assert get_logger().propagate is True


def test_root_setup_twice_keeps_one_handler_and_leaves_others_alone(
    restore_root_logger: logging.Logger,
) -> None:
    own = logging.NullHandler()
    restore_root_logger.addHandler(own)
    before = list(restore_root_logger.handlers)
    setup_logging(logging.INFO, root=True)
    setup_logging(logging.DEBUG, root=True)
    ours = [h for h in restore_root_logger.handlers if h not in before]
    assert len(ours) == 1
    assert restore_root_logger.handlers == [*before, *ours]
    assert restore_root_logger.level == logging.DEBUG


def test_alsek_only_setup_takes_the_root_handler_back(
    restore_root_logger: logging.Logger,
) -> None:
    before = list(restore_root_logger.handlers)
    setup_logging(logging.INFO, root=True)
    setup_logging(logging.WARNING)
    assert restore_root_logger.handlers == before
    assert len(get_logger().handlers) == 1
    assert get_logger().propagate is False


@pytest.mark.parametrize("root", [False, True])
def test_the_current_setup_is_what_a_child_process_repeats(
    restore_root_logger: logging.Logger, root: bool
) -> None:
    setup_logging(logging.DEBUG, root=root)
    setup = current_log_setup()
    assert setup == LogSetup(logging.DEBUG, root)
    setup_logging(logging.ERROR)  # a fresh child's state, as far as it matters
    setup.apply()
    assert current_log_setup() == setup


def test_before_receives_only_the_parameters_it_names() -> None:
    calls: list[dict[str, Any]] = []

    def before(b: int) -> None:
        calls.append({"b": b})

    @magic_logger(before=before)
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, b=2) == 3
    assert calls == [{"b": 2}]


def test_after_receives_input_and_output() -> None:
    calls: list[tuple[dict[str, Any], Any]] = []

    def after(input_: dict[str, Any], output: Any) -> None:
        calls.append((input_, output))

    @magic_logger(after=after)
    def add(a: int, b: int = 10) -> int:
        return a + b

    add(1)
    assert calls == [({"a": 1, "b": 10}, 11)]


def test_after_may_ask_for_output_only() -> None:
    outputs: list[Any] = []

    @magic_logger(after=lambda output: outputs.append(output))
    def value() -> str:
        return "v"

    value()
    assert outputs == ["v"]


def test_self_is_not_passed_for_methods() -> None:
    seen: list[dict[str, Any]] = []

    class Box:
        @magic_logger(after=lambda input_: seen.append(input_))
        def put(self, item: str) -> None:
            pass

    Box().put("x")
    assert seen == [{"item": "x"}]


def test_before_runs_before_and_after_runs_after_the_call() -> None:
    order: list[str] = []

    @magic_logger(before=lambda: order.append("before"), after=lambda: order.append("after"))
    def work() -> None:
        order.append("call")

    work()
    assert order == ["before", "call", "after"]


async def test_async_function_gets_async_wrapper_and_after_runs_after_await() -> None:
    order: list[str] = []

    @magic_logger(before=lambda: order.append("before"), after=lambda: order.append("after"))
    async def work() -> int:
        order.append("call")
        return 5

    assert inspect.iscoroutinefunction(work)
    coroutine = work()
    assert order == []  # nothing happens until the coroutine is awaited
    assert await coroutine == 5
    assert order == ["before", "call", "after"]


async def test_async_after_receives_the_awaited_output() -> None:
    outputs: list[Any] = []

    @magic_logger(after=lambda output: outputs.append(output))
    async def work() -> int:
        return 42

    await work()
    assert outputs == [42]


def test_after_is_skipped_when_the_call_raises() -> None:
    order: list[str] = []

    @magic_logger(before=lambda: order.append("before"), after=lambda: order.append("after"))
    def fail() -> None:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        fail()
    assert order == ["before"]


def test_bad_call_raises_its_natural_type_error_without_logging() -> None:
    order: list[str] = []

    @magic_logger(before=lambda: order.append("before"))
    def one(a: int) -> int:
        return a

    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        one()  # type: ignore[call-arg]
    assert order == []


def test_wrapper_keeps_name_and_docstring() -> None:
    @magic_logger()
    def documented() -> None:
        """Docs."""

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Docs."
