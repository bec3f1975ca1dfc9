"""The process pool's warm children under fire: children SIGKILLed from outside while messages
flow (the OOM killer, a segfault), and SIGTERM (once: drain, then release; twice: stop now).

A message may run again only when its attempt was in flight in a child that was killed; that
attempt counts (``WorkerLostError`` on the next one), a released one does not. Nothing is lost,
and the pool leaves no child behind when it exits.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from typing import Any

import pytest
from faultlab import FaultLab, PoolProcess, eventually, scaled
from faultwork import probe

from alsek.core.message import Message

pytestmark = pytest.mark.slow

#: Messages of the storm, how long each runs, and the pool's children.
STORM_MESSAGES = scaled(1_500, 600)
STORM_TASK_SECONDS = 0.02
CHILDREN = 4
#: Seconds between two kills, and the kills the storm makes at least (more messages come
#: while fewer: a fast pool drains sooner).
KILL_EVERY_SECONDS = 0.25
STORM_MIN_KILLS = 8
#: Grace period of the SIGTERM scenario, a run that finishes within it, one that cannot; and
#: the grace period of the second-SIGTERM scenario (the pool must not wait for it).
GRACE_MS = 5_000
FINISHING_SECONDS = 1.0
LONG_SECONDS = 30.0
LONG_GRACE_MS = 60_000
#: Seconds a pool gets to exit after SIGTERM, beyond its grace period.
EXIT_SECONDS = 15
WORKER_LOST = "alsek.exceptions.WorkerLostError"


def children(pool: PoolProcess) -> list[int]:
    """The pool's live children (its warm processes)."""
    return [pid for pid in pool.pids() if pid != pool.pid]


def kill(pid: int, kills: dict[int, int]) -> None:
    """SIGKILL ``pid``, noting when (a child that ended meanwhile is fine)."""
    kills[pid] = probe.now_ms()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(180)
def test_children_killed_under_load_lose_nothing_and_repeat_only_attempts_in_flight(
    lab: FaultLab, figures: dict[str, Any]
) -> None:
    pool = lab.cli_pool("process", CHILDREN)
    lab.wait_until_idle([pool])
    wave = [(STORM_TASK_SECONDS,)] * (STORM_MESSAGES // 3)
    messages = lab.submit("work", wave * 3)
    kills: dict[int, int] = {}  # pid -> when it was killed
    next_kill = time.monotonic() + KILL_EVERY_SECONDS
    deadline = time.monotonic() + 120
    while (live := lab.live_statuses()) or len(kills) < STORM_MIN_KILLS:
        assert time.monotonic() < deadline, f"{live} messages never settled"
        assert pool.alive, pool.output()
        if time.monotonic() >= next_kill:
            candidates = [pid for pid in children(pool) if pid not in kills]
            if candidates:
                kill(candidates[len(kills) % len(candidates)], kills)
            next_kill += KILL_EVERY_SECONDS
        if live < len(wave) and len(kills) < STORM_MIN_KILLS:
            messages += lab.submit("work", wave)  # keep the storm fed until it did enough
        time.sleep(0.02)

    evidence = lab.evidence()
    lab.assert_all_succeeded(messages, [STORM_TASK_SECONDS] * len(messages))
    hygiene = lab.assert_hygiene(live=0)
    assert lab.broker.dlq_count() == 0
    repeated = evidence.repeated()
    for uuid, attempts in repeated.items():
        for before, after in itertools.pairwise(attempts):
            killed_at = kills.get(before.pid)
            assert killed_at is not None and before.at <= killed_at, (
                f"{uuid} ran again after an attempt that no kill stopped: {attempts}"
            )
            assert after.error == WORKER_LOST, f"{uuid}: a lost attempt not recorded: {attempts}"
            assert after.retries == before.retries + 1, f"{uuid}: uncounted: {attempts}"
    ran_in = evidence.by("pid")
    # Warm: a process runs many messages, and a new one starts only in place of a killed one.
    assert len(ran_in) <= CHILDREN + len(kills), ran_in
    runs = sum(evidence.runs(m.uuid) for m in messages)
    figures.update(
        messages=len(messages),
        children=CHILDREN,
        kills=len(kills),
        runs=runs,
        messages_run_twice_or_more=len(repeated),
        extra_runs=runs - len(messages),
        processes_that_ran_messages=len(ran_in),
        most_messages_in_one_process=max(ran_in.values()),
        lost=0,
        hygiene=hygiene.summary(),
    )
    pool.signal(signal.SIGTERM)
    assert pool.wait(EXIT_SECONDS) == 0, pool.output()
    eventually(lambda: not pool.pids(), 10, "every child of the pool gone")


def assert_released(lab: FaultLab, messages: list[Message]) -> None:
    """Each message is back in its queue, unleased, with no attempt counted for the stop."""
    live = lab.audit().live
    for message in messages:
        assert live.get(f"{lab.queue}/{message.uuid}") == "ready", live
        assert lab.broker.sync_from_backend(message).retries == 0


@pytest.mark.timeout(90)
def test_sigterm_lets_runs_finish_in_the_grace_period_releases_the_rest_and_ends_every_child(
    lab: FaultLab, figures: dict[str, Any]
) -> None:
    pool = lab.cli_pool("process", 2, "--grace_period", str(GRACE_MS))
    lab.wait_until_idle([pool])
    [finishing] = lab.submit("work", [(FINISHING_SECONDS,)])
    [released] = lab.submit("work", [(LONG_SECONDS,)])
    eventually(lambda: lab.probe.hlen(probe.STARTS) == 2, 20, "both running")
    sent = time.monotonic()
    pool.signal(signal.SIGTERM)
    assert pool.wait(GRACE_MS / 1000 + EXIT_SECONDS) == 0, pool.output()
    exit_seconds = time.monotonic() - sent
    eventually(lambda: not pool.pids(), 10, "every child of the pool gone")
    assert lab.outcomes([finishing]) == [("SUCCEEDED", FINISHING_SECONDS)]
    assert_released(lab, [released])
    assert lab.evidence().runs(released.uuid) == 1
    figures.update(grace_ms=GRACE_MS, exit_seconds=round(exit_seconds, 2), released=1)


@pytest.mark.timeout(90)
def test_a_second_sigterm_stops_at_once_and_releases_every_run(lab: FaultLab) -> None:
    pool = lab.cli_pool("process", 2, "--grace_period", str(LONG_GRACE_MS), log_level="INFO")
    lab.wait_until_idle([pool])
    running = lab.submit("work", [(LONG_SECONDS,)] * 2)
    eventually(lambda: lab.probe.hlen(probe.STARTS) == 2, 20, "both running")
    pool.signal(signal.SIGTERM)
    eventually(lambda: "Stopping: 2 running" in pool.stderr(), 10, "the pool draining")
    pool.signal(signal.SIGTERM)
    assert pool.wait(EXIT_SECONDS) == 1, pool.output()  # long before the grace period ends
    eventually(lambda: not pool.pids(), 10, "every child of the pool gone")
    assert_released(lab, running)
    assert "Traceback" not in pool.stderr(), pool.output()
