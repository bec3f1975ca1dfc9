"""utils.system: stop signals, CPU count and thread_raise."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from alsek.utils import system
from alsek.utils.system import (
    StopSignalListener,
    async_wait_for_stop,
    clear_stop_request,
    smart_cpu_count,
    stop_requested,
    thread_raise,
    wait_for_stop,
)

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


@pytest.fixture(autouse=True)
def isolated_signals() -> Iterator[None]:
    """Restore the process's signal handlers and forget any stop request after each test."""
    saved = {signum: signal.getsignal(signum) for signum in HANDLED}
    clear_stop_request()
    system._LISTENERS.clear()  # listeners kept alive by earlier tests must not react here
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)
    clear_stop_request()
    system._LISTENERS.clear()


def _set_later(event: threading.Event, delay_seconds: float = 0.05) -> threading.Timer:
    timer = threading.Timer(delay_seconds, event.set)
    timer.start()
    return timer


def _in_thread(target: object) -> None:
    thread = threading.Thread(target=target)  # type: ignore[arg-type]
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_listener_in_main_thread_installs_the_dispatcher() -> None:
    StopSignalListener()
    assert signal.getsignal(signal.SIGTERM) is system._dispatch
    assert signal.getsignal(signal.SIGINT) is system._dispatch


def test_signal_marks_listener_received_and_process_stop_requested() -> None:
    listener = StopSignalListener()
    assert not listener.received
    signal.raise_signal(signal.SIGTERM)
    assert listener.received
    assert stop_requested()


def test_second_signal_with_exit_override_exits_with_code_1() -> None:
    listener = StopSignalListener(exit_override=True)
    signal.raise_signal(signal.SIGINT)
    assert listener.received
    with pytest.raises(SystemExit) as info:
        signal.raise_signal(signal.SIGINT)
    assert info.value.code == 1


def test_second_signal_without_exit_override_does_not_exit() -> None:
    listener = StopSignalListener(exit_override=False)
    signal.raise_signal(signal.SIGTERM)
    signal.raise_signal(signal.SIGTERM)
    assert listener.received


def test_a_later_listener_does_not_silence_an_earlier_one() -> None:
    first = StopSignalListener(exit_override=False)
    second = StopSignalListener(exit_override=False)
    signal.raise_signal(signal.SIGTERM)
    assert first.received
    assert second.received


def test_listener_ignores_signals_it_does_not_listen_to() -> None:
    only_usr1 = StopSignalListener(stop_signals=(signal.SIGUSR1,), exit_override=False)
    StopSignalListener(exit_override=False)
    signal.raise_signal(signal.SIGTERM)
    assert not only_usr1.received
    signal.raise_signal(signal.SIGUSR1)
    assert only_usr1.received


def test_signal_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    listener = StopSignalListener(exit_override=False)
    with caplog.at_level(logging.DEBUG, logger="alsek"):
        signal.raise_signal(signal.SIGTERM)
    assert listener.received
    assert "Received stop signal SIGTERM" in caplog.text


def test_a_discarded_listener_is_no_longer_notified() -> None:
    StopSignalListener(exit_override=True)  # dropped at once: nothing keeps it alive
    signal.raise_signal(signal.SIGTERM)
    signal.raise_signal(signal.SIGTERM)  # no live listener asked to exit
    assert stop_requested()


def test_listener_built_outside_main_thread_installs_nothing_and_still_works() -> None:
    before = signal.getsignal(signal.SIGTERM)
    built: list[StopSignalListener] = []
    _in_thread(lambda: built.append(StopSignalListener()))
    assert signal.getsignal(signal.SIGTERM) is before
    listener = built[0]
    assert not listener.received
    listener.exit_event.set()
    assert listener.received


def test_listener_built_in_a_thread_is_notified_by_the_main_dispatcher() -> None:
    StopSignalListener(exit_override=False)
    built: list[StopSignalListener] = []
    _in_thread(lambda: built.append(StopSignalListener(exit_override=False)))
    signal.raise_signal(signal.SIGTERM)
    assert built[0].received


def test_wait_times_out_in_milliseconds() -> None:
    listener = StopSignalListener(exit_override=False)
    start = time.monotonic()
    listener.wait(50)
    elapsed = time.monotonic() - start
    assert 0.04 <= elapsed < 2


def test_wait_returns_early_when_the_event_is_set() -> None:
    listener = StopSignalListener(exit_override=False)
    timer = _set_later(listener.exit_event)
    start = time.monotonic()
    listener.wait(10_000)
    assert time.monotonic() - start < 5
    assert listener.received
    timer.join()


def test_wait_none_blocks_until_set() -> None:
    listener = StopSignalListener(exit_override=False)
    timer = _set_later(listener.exit_event)
    listener.wait(None)
    assert listener.received
    timer.join()


async def test_async_wait_returns_as_soon_as_the_event_is_set() -> None:
    listener = StopSignalListener(exit_override=False)
    timer = _set_later(listener.exit_event)
    start = time.monotonic()
    await listener.async_wait(10)
    assert time.monotonic() - start < 5
    assert listener.received
    timer.join()


async def test_async_wait_times_out_in_seconds() -> None:
    listener = StopSignalListener(exit_override=False)
    start = time.monotonic()
    await listener.async_wait(0.05)
    assert 0.04 <= time.monotonic() - start < 2
    assert not listener.received


async def test_async_wait_keeps_the_event_loop_free() -> None:
    listener = StopSignalListener(exit_override=False)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    await listener.async_wait(0.1)
    task.cancel()
    assert ticks >= 3


async def test_async_wait_none_returns_when_set() -> None:
    listener = StopSignalListener(exit_override=False)
    timer = _set_later(listener.exit_event)
    await asyncio.wait_for(listener.async_wait(None), timeout=5)
    assert listener.received
    timer.join()


def test_stop_requested_is_false_until_a_signal() -> None:
    StopSignalListener(exit_override=False)
    assert not stop_requested()
    signal.raise_signal(signal.SIGTERM)
    assert stop_requested()


def test_clear_stop_request_forgets_the_signal() -> None:
    StopSignalListener(exit_override=False)
    signal.raise_signal(signal.SIGTERM)
    clear_stop_request()
    assert not stop_requested()


def test_wait_for_stop_times_out_false() -> None:
    start = time.monotonic()
    assert wait_for_stop(30) is False
    assert time.monotonic() - start >= 0.025


def test_wait_for_stop_returns_true_once_stopped() -> None:
    timer = _set_later(system._STOP_EVENT)
    assert wait_for_stop(10_000) is True
    timer.join()


def test_wait_for_stop_with_negative_timeout_does_not_block() -> None:
    start = time.monotonic()
    assert wait_for_stop(-5) is False
    assert time.monotonic() - start < 1


async def test_async_wait_for_stop_reports_timeout_and_stop() -> None:
    assert await async_wait_for_stop(0.01) is False
    timer = _set_later(system._STOP_EVENT)
    assert await async_wait_for_stop(10) is True
    timer.join()


@pytest.mark.parametrize(("cpus", "expected"), [(8, 7), (2, 1), (1, 1), (None, 1)])
def test_smart_cpu_count_leaves_one_core(
    monkeypatch: pytest.MonkeyPatch, cpus: int | None, expected: int
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert smart_cpu_count() == expected


class _Injected(Exception):
    pass


def test_thread_raise_raises_inside_the_target_thread() -> None:
    caught: list[BaseException] = []
    started = threading.Event()

    def spin() -> None:
        started.set()
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                time.sleep(0.001)
        except _Injected as error:
            caught.append(error)

    thread = threading.Thread(target=spin)
    thread.start()
    started.wait(5)
    assert thread.ident is not None
    thread_raise(thread.ident, _Injected)
    thread.join(timeout=10)
    assert len(caught) == 1


def test_thread_raise_on_unknown_thread_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="alsek"):
        thread_raise(2**62 + 12345, _Injected)
    assert "affected 0 threads" in caplog.text


def test_thread_raise_rejects_non_exception_classes() -> None:
    with pytest.raises(TypeError, match="expects an exception class"):
        thread_raise(threading.get_ident(), ValueError("instance"))  # type: ignore[arg-type]
