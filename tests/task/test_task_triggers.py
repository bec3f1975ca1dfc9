"""Trigger tasks: lazy schedulers, one new message per firing, one message per tick across
processes, and clear/pause/resume/shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import dill
import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from alsek.core.message import Message
from alsek.core.status import TaskStatus
from alsek.core.task import AsyncTriggerTask, TriggerTask
from alsek.core.task.base import BaseTask
from alsek.core.task.triggers import _MultiSubmit
from alsek.exceptions import SchedulingError
from tests.polling import eventually
from tests.task.conftest import Kit
from tests.task.trigger_process import schedule_tick, tick


async def async_tick() -> None:
    return None


def _trigger_task(kit: Kit, seconds: float = 0.2, **kwargs: Any) -> TriggerTask:
    trigger = IntervalTrigger(seconds=seconds)  # type: ignore[arg-type]
    return TriggerTask(tick, trigger=trigger, broker=kit.broker, queue="q", **kwargs)


@pytest.fixture
def scheduled(sync_kit: Kit):  # type: ignore[no-untyped-def]
    """Trigger tasks made with ``make``; their schedulers are shut down after the test."""
    made: list[TriggerTask] = []

    def make(**kwargs: Any) -> TriggerTask:
        made.append(_trigger_task(sync_kit, **kwargs))
        return made[-1]

    yield make
    for task in made:
        if "scheduler" in vars(task) and task.scheduler.running:
            task.scheduler.shutdown(wait=True)


def _tick_ms(message: Message) -> int:
    return message.created_at - message.created_at % 1000


# -- construction -----------------------------------------------------------------------------


def test_a_function_with_parameters_cannot_be_a_trigger_task(sync_kit: Kit) -> None:
    with pytest.raises(SchedulingError, match="cannot includes parameters"):
        TriggerTask(lambda x: x, trigger=IntervalTrigger(hours=1), broker=sync_kit.broker)


def test_building_a_trigger_task_starts_nothing(scheduled: Any) -> None:
    threads = threading.active_count()
    task = scheduled()
    assert "scheduler" not in vars(task)
    assert threading.active_count() == threads
    assert not task.generated  # creates the scheduler, still not started
    assert not task.scheduler.running


def test_generate_many_is_refused(scheduled: Any) -> None:
    with pytest.raises(SchedulingError, match="use generate"):
        scheduled().generate_many(kwargs_list=[{}])


def test_serialize_keeps_the_trigger_and_starts_nothing(sync_kit: Kit, scheduled: Any) -> None:
    task = scheduled(seconds=3600)
    rebuilt: Any = BaseTask.deserialize(dill.loads(dill.dumps(task.serialize())))
    assert type(rebuilt) is TriggerTask
    assert rebuilt.trigger.interval == timedelta(hours=1)
    assert "scheduler" not in vars(rebuilt)
    rebuilt.broker.backend.conn.close()


# -- firing -----------------------------------------------------------------------------------


async def test_each_firing_submits_a_new_message_with_submitted(
    sync_kit: Kit, scheduled: Any
) -> None:
    task = scheduled(status_tracker=sync_kit.tracker)
    template = task.generate(metadata={"m": 1})
    assert task.generated and task.scheduler.running
    assert not sync_kit.broker.exists(template)
    assert not sync_kit.tracker.exists(template)  # no status for a message never submitted
    fired: list[Message] = []
    deadline = time.monotonic() + 10
    while len(fired) < 2:
        assert time.monotonic() < deadline
        fired += await sync_kit.claim()
        await asyncio.sleep(0.02)
    task.clear()
    first, second = fired[:2]
    assert first.uuid != second.uuid != template.uuid
    for message in (first, second):
        assert message.progenitor_uuid == template.uuid
        assert (message.task_name, message.metadata) == (template.task_name, {"m": 1})
        assert sync_kit.tracker.get(message).value is TaskStatus.SUBMITTED


def test_a_second_generate_is_refused(scheduled: Any) -> None:
    task = scheduled(seconds=3600)
    task.generate()
    with pytest.raises(SchedulingError, match="already scheduled"):
        task.generate()


def test_a_deferred_generate_schedules_nothing(scheduled: Any) -> None:
    task = scheduled(seconds=3600)
    task.defer().generate()
    assert not task.generated


def test_two_schedules_of_one_task_yield_one_message_per_tick(
    sync_kit: Kit, scheduled: Any
) -> None:
    """Two schedulers (as in two processes) built 0.15 s apart fire out of phase."""
    firings: list[tuple[int, int]] = []
    tasks = []
    for index in range(2):
        task = scheduled(seconds=0.3)

        def report(event: JobExecutionEvent, index: int = index) -> None:
            firings.append((index, round(event.scheduled_run_time.timestamp() * 1000)))

        task.scheduler.add_listener(report, EVENT_JOB_EXECUTED)
        tasks.append(task)
        time.sleep(0.15)
    for task in tasks:
        task.generate()
    eventually(lambda: all(sum(1 for i, _ in firings if i == n) >= 3 for n in range(2)))
    for task in tasks:
        task.scheduler.shutdown(wait=True)
    ticks = {fired - fired % 300 for _, fired in firings}
    messages = _all_messages(sync_kit)
    assert len(messages) == len(ticks) < len(firings)
    assert {message.created_at - message.created_at % 300 for message in messages} == ticks


def test_a_tick_already_run_and_acked_is_not_submitted_again(sync_kit: Kit, scheduled: Any) -> None:
    """The broker forgets an acked message; the tick's marker still says it was submitted."""
    one, other = scheduled(seconds=10), scheduled(seconds=10)
    fire = datetime.fromtimestamp(time.time() // 10 * 10, timezone.utc)  # a tick's start
    _MultiSubmit(one, one.generate(submit=False), {})(fire)
    [first] = _all_messages(sync_kit)
    sync_kit.broker.ack(first)
    _MultiSubmit(other, other.generate(submit=False), {})(fire + timedelta(seconds=1))
    assert _all_messages(sync_kit) == []
    _MultiSubmit(other, other.generate(submit=False), {})(fire - timedelta(seconds=10))
    assert len(_all_messages(sync_kit)) == 1  # another tick


def _all_messages(kit: Kit) -> list[Message]:
    return asyncio.run(kit.claim(n=1000))


# -- ticks and fired messages (no I/O) --------------------------------------------------------


def test_interval_ticks_are_interval_aligned_slots(scheduled: Any) -> None:
    task = scheduled(seconds=10)
    base = datetime(2030, 1, 1, tzinfo=timezone.utc)
    expected = round(base.timestamp() * 1000)
    assert task._tick(base + timedelta(seconds=3.25)) == expected
    assert task._tick(base + timedelta(seconds=9.999)) == expected
    assert task._tick(base + timedelta(seconds=10)) == expected + 10_000


def test_other_triggers_tick_at_their_fire_time(sync_kit: Kit) -> None:
    task = TriggerTask(tick, trigger=CronTrigger(second="*/5"), broker=sync_kit.broker)
    fire = datetime(2030, 1, 1, 0, 0, 5, tzinfo=timezone.utc)
    assert task._tick(fire) == round(fire.timestamp() * 1000)


def test_the_fired_uuid_depends_on_queue_task_and_tick_only(scheduled: Any) -> None:
    one, other = scheduled(seconds=10), scheduled(seconds=10)
    base = datetime(2030, 1, 1, tzinfo=timezone.utc)
    a = one._fired_message(one.generate(submit=False), base + timedelta(seconds=1))
    b = other._fired_message(other.generate(submit=False), base + timedelta(seconds=7))
    c = one._fired_message(one.generate(submit=False), base + timedelta(seconds=11))
    assert a.uuid == b.uuid != c.uuid
    uuid.UUID(a.uuid)  # a real uuid
    assert a.created_at == round((base + timedelta(seconds=1)).timestamp() * 1000)
    assert a.ready_at == a.created_at


# -- clear, pause, resume, shutdown -----------------------------------------------------------


def test_clear_removes_the_job(scheduled: Any) -> None:
    task = scheduled(seconds=3600)
    with pytest.raises(AttributeError, match="Task not generated"):
        task.clear()
    task.generate()
    task.clear()
    assert not task.generated
    with pytest.raises(AttributeError, match="Task not generated"):
        task.clear()
    task.generate()  # can be scheduled again
    assert task.generated


def test_pause_and_resume(scheduled: Any) -> None:
    task = scheduled(seconds=3600)
    task.generate()
    task.pause()
    assert task.scheduler.state == STATE_PAUSED
    task.resume()
    assert task.scheduler.state == STATE_RUNNING


def test_pause_before_generate_starts_paused(sync_kit: Kit, scheduled: Any) -> None:
    task = scheduled(seconds=0.05)
    task.pause()
    task.generate()
    assert task.scheduler.state == STATE_PAUSED
    time.sleep(0.2)  # several periods: nothing may fire while paused
    assert _all_messages(sync_kit) == []
    task.resume()
    eventually(lambda: _all_messages(sync_kit))


def test_shutdown_drops_the_schedule(scheduled: Any) -> None:
    task = scheduled(seconds=3600)
    task.shutdown()  # not started: nothing to do
    task.generate()
    scheduler = task.scheduler
    task.shutdown()
    assert not scheduler.running and not task.generated
    task.generate()
    assert task.generated and task.scheduler is not scheduler


# -- async ------------------------------------------------------------------------------------


async def test_async_trigger_task_fires_on_the_running_loop(redis_url: str, namespace: str) -> None:
    kit = Kit("async", redis_url, namespace)
    trigger = IntervalTrigger(seconds=0.2)  # type: ignore[arg-type]
    task = AsyncTriggerTask(
        async_tick, trigger=trigger, broker=kit.broker, queue="q", status_tracker=kit.tracker
    )
    assert "scheduler" not in vars(task)
    template = await task.generate()
    assert task.generated and task.scheduler.running
    fired: list[Message] = []
    deadline = time.monotonic() + 10
    while len(fired) < 2:
        assert time.monotonic() < deadline
        fired += await kit.claim()
        await asyncio.sleep(0.02)
    with pytest.raises(SchedulingError):
        await task.generate()
    task.clear()
    task.shutdown()
    assert {m.progenitor_uuid for m in fired} == {template.uuid}
    assert len({m.uuid for m in fired}) == len(fired)
    assert (await kit.tracker.get(fired[0])).value is TaskStatus.SUBMITTED
    await kit.close()


# -- several processes ------------------------------------------------------------------------


@pytest.mark.slow
def test_three_processes_yield_one_message_per_tick(sync_kit: Kit) -> None:
    """The same task scheduled every second in three processes, for a few seconds."""
    context = multiprocessing.get_context("spawn")
    firings: Any = context.Queue()
    stop = context.Event()
    processes = [
        context.Process(
            target=schedule_tick, args=(sync_kit.url, sync_kit.namespace, firings, stop)
        )
        for _ in range(3)
    ]
    for process in processes:
        process.start()
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + 30
    try:
        while len(counts := Counter(pid for pid, _ in seen)) < 3 or min(counts.values()) < 3:
            assert time.monotonic() < deadline, f"firings so far: {seen}"
            with contextlib.suppress(queue.Empty):
                seen.append(firings.get(timeout=0.5))
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=10)
    while True:  # firings reported while stopping
        try:
            seen.append(firings.get(timeout=0.2))
        except queue.Empty:
            break
    assert all(process.exitcode == 0 for process in processes)
    firing_pids: dict[int, set[int]] = {}
    for pid, fired in seen:
        firing_pids.setdefault(fired - fired % 1000, set()).add(pid)
    messages = _all_messages(sync_kit)
    assert len(messages) == len(firing_pids), (firing_pids, [m.created_at for m in messages])
    assert {_tick_ms(message) for message in messages} == set(firing_pids)
    # The processes really fired the same ticks: several ticks were fired by all three.
    assert sum(len(pids) == 3 for pids in firing_pids.values()) >= 2, firing_pids
