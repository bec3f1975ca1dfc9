"""utils.waiting: waiter and async_waiter, which read the stop flag but never touch handlers."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from alsek.utils import system
from alsek.utils.system import StopSignalListener, clear_stop_request
from alsek.utils.waiting import async_waiter, waiter


@pytest.fixture(autouse=True)
def isolated_signals() -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    clear_stop_request()
    system._LISTENERS.clear()  # listeners kept alive by earlier tests must not react here
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)
    clear_stop_request()
    system._LISTENERS.clear()


class Countdown:
    """A condition that becomes true on its n-th check."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n

    async def check(self) -> bool:
        return self()


def _stop_later(delay_seconds: float = 0.05) -> threading.Timer:
    timer = threading.Timer(delay_seconds, system._STOP_EVENT.set)
    timer.start()
    return timer


def test_returns_true_when_condition_already_holds() -> None:
    assert waiter(lambda: True) is True


def test_polls_until_condition_holds() -> None:
    condition = Countdown(3)
    assert waiter(condition, sleep_interval=1) is True
    assert condition.calls == 3


def test_raises_timeout_with_message() -> None:
    with pytest.raises(TimeoutError, match=r"^gave up$"):
        waiter(lambda: False, sleep_interval=5, timeout=30, timeout_msg="gave up")


def test_timeout_message_defaults_to_empty() -> None:
    with pytest.raises(TimeoutError) as info:
        waiter(lambda: False, sleep_interval=5, timeout=0)
    assert str(info.value) == ""


def test_timeout_is_not_overshot_by_a_long_sleep_interval() -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        waiter(lambda: False, sleep_interval=60_000, timeout=50)
    assert time.monotonic() - start < 5


def test_stop_signal_returns_false() -> None:
    listener = StopSignalListener(exit_override=False)
    signal.raise_signal(signal.SIGTERM)
    assert listener.received
    assert waiter(lambda: True) is False


def test_stop_cuts_a_long_sleep_short() -> None:
    timer = _stop_later()
    start = time.monotonic()
    assert waiter(lambda: False, sleep_interval=60_000) is False
    assert time.monotonic() - start < 5
    timer.join()


def test_waiter_leaves_signal_handlers_alone() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    waiter(Countdown(2), sleep_interval=1)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_waiter_works_from_a_worker_thread() -> None:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(waiter(Countdown(2), sleep_interval=1, timeout=5_000))
        except BaseException as error:  # the assertion below reports it
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=10)
    assert outcome == [True]


@pytest.mark.parametrize(("sleep_interval", "timeout"), [(-1, None), (10, -1)])
def test_negative_interval_or_timeout_is_rejected(sleep_interval: int, timeout: int | None) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        waiter(lambda: True, sleep_interval=sleep_interval, timeout=timeout)


async def test_async_returns_true_when_condition_holds() -> None:
    condition = Countdown(3)
    assert await async_waiter(condition.check, sleep_interval=1) is True
    assert condition.calls == 3


async def test_async_raises_timeout_with_message() -> None:
    with pytest.raises(TimeoutError, match=r"^late$"):
        await async_waiter(Countdown(10**9).check, sleep_interval=5, timeout=30, timeout_msg="late")


async def test_async_timeout_zero_checks_once_then_raises() -> None:
    condition = Countdown(10**9)
    with pytest.raises(TimeoutError):
        await async_waiter(condition.check, sleep_interval=5, timeout=0)
    assert condition.calls >= 1


async def test_async_stop_returns_false_and_cuts_sleep_short() -> None:
    timer = _stop_later()
    start = time.monotonic()
    assert await async_waiter(Countdown(10**9).check, sleep_interval=60_000) is False
    assert time.monotonic() - start < 5
    timer.join()


async def test_async_waiter_keeps_the_loop_free() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    with pytest.raises(TimeoutError):
        await async_waiter(Countdown(10**9).check, sleep_interval=100, timeout=100)
    task.cancel()
    assert ticks >= 3


async def test_async_waiter_leaves_signal_handlers_alone() -> None:
    before = signal.getsignal(signal.SIGTERM)
    await async_waiter(Countdown(2).check, sleep_interval=1)
    assert signal.getsignal(signal.SIGTERM) is before


async def test_async_negative_interval_is_rejected() -> None:
    with pytest.raises(ValueError, match="sleep_interval must be >= 0"):
        await async_waiter(Countdown(1).check, sleep_interval=-5)
