"""Pools killed or stopped under load: SIGKILL every few seconds, SIGTERM mid-run.

A message may run again only when the attempt before was in flight in a process that was
killed (a SIGKILL storm) or stopped past its grace period (SIGTERM); a SIGKILLed attempt counts
as an attempt (``WorkerLostError`` on the next one), a released one does not. Nothing is lost.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import statistics
import time
from dataclasses import dataclass
from typing import Any

import pytest
from faultlab import FaultLab, PoolProcess, eventually, scaled
from faultwork import probe

pytestmark = pytest.mark.slow

#: Messages of the SIGKILL storm (the issue's size) and seconds between two kills.
STORM_MESSAGES = scaled(10_000, 5_000)
KILL_EVERY_SECONDS = 2.0
#: Kills the storm makes at least: while fewer, more messages come (faster pools drain sooner).
STORM_MIN_KILLS = 5
#: Lease of the storm's pools: a killed pool's messages run again after about this long.
STORM_LEASE_MS = 3_000
#: How long each storm message runs (so that a kill always catches some in flight).
STORM_TASK_SECONDS = 0.02
#: Messages of the SIGTERM scenario: many short ones and a few that outlive the grace period.
SIGTERM_SHORT = scaled(3_000, 2_000)
SIGTERM_LONG = 12
SIGTERM_LONG_SECONDS = 6.0
GRACE_MS = 1_000
#: Seconds a pool gets to exit after SIGTERM, beyond its grace period.
EXIT_SECONDS = 15
WORKER_LOST = "alsek.exceptions.WorkerLostError"


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: when, which processes, and whether the whole pool or one of its groups."""

    at: int
    pool: str
    pids: frozenset[int]
    whole_pool: bool


class Storm:
    """Kills one pool process every ``KILL_EVERY_SECONDS`` in turn, restarting what it kills.

    Whole pools (with every child) and, for thread pools, their process group alone (the pool
    then finishes the group's messages as lost attempts and starts a new group).
    """

    def __init__(self, lab: FaultLab, pools: list[PoolProcess]) -> None:
        self.lab = lab
        self.pools = pools
        self.kills: list[Kill] = []
        self._targets = itertools.cycle(
            [(0, True), (2, True), (1, False), (1, True), (0, False), (2, True)]
        )

    def kill_next(self) -> None:
        index, whole = next(self._targets)
        pool = self.pools[index]
        kind = pool.name.split("-")[0]
        if whole or kind != "thread":
            pids = pool.kill()
            self.kills.append(Kill(probe.now_ms(), pool.name, frozenset(pids), True))
            self.pools[index] = self.lab.launched_pool(kind, pool_capacity(kind), STORM_LEASE_MS)
            return
        children = [pid for pid in pool.pids() if pid != pool.pid]
        if not children:  # its group is being restarted: nothing to kill this time
            return
        signal_all(children, signal.SIGKILL)
        self.kills.append(Kill(probe.now_ms(), pool.name, frozenset(children), False))


def signal_all(pids: list[int], signum: int) -> None:
    """Send ``signum`` to each of ``pids`` that still runs."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def pool_capacity(kind: str) -> int:
    """Messages a storm pool of ``kind`` runs at once."""
    return 50 if kind == "async" else 8


@pytest.mark.timeout(200)
def test_a_sigkill_storm_loses_nothing_and_repeats_only_attempts_in_flight(
    lab: FaultLab, figures: dict[str, Any]
) -> None:
    pools = [
        lab.launched_pool(kind, pool_capacity(kind), STORM_LEASE_MS)
        for kind in ("thread", "thread", "async")
    ]
    lab.wait_until_idle(pools)
    storm = Storm(lab, pools)
    started = time.monotonic()
    next_kill = started + KILL_EVERY_SECONDS
    wave = [(STORM_TASK_SECONDS,)] * (STORM_MESSAGES // 5)
    messages = lab.submit("work", wave * 5)
    deadline = time.monotonic() + 150
    while (live := lab.live_statuses()) or len(storm.kills) < STORM_MIN_KILLS:
        assert time.monotonic() < deadline, f"{live} messages never settled"
        if time.monotonic() >= next_kill:
            storm.kill_next()
            next_kill += KILL_EVERY_SECONDS
        if live < len(wave) and len(storm.kills) < STORM_MIN_KILLS:
            messages += lab.submit("work", wave)  # keep the storm fed until it did enough
        time.sleep(0.05)
    elapsed = time.monotonic() - started

    evidence = lab.evidence()
    lab.assert_all_succeeded(messages, [STORM_TASK_SECONDS] * len(messages))
    hygiene = lab.assert_hygiene(live=0)
    assert lab.broker.dlq_count() == 0

    killed_at = {pid: kill.at for kill in storm.kills for pid in kill.pids}
    repeated = evidence.repeated()
    recoveries = []
    for uuid, attempts in repeated.items():
        for before, after in itertools.pairwise(attempts):
            kill_time = killed_at.get(before.pid)
            assert kill_time is not None and before.at <= kill_time, (
                f"{uuid} ran again after an attempt that no kill stopped: {attempts}"
            )
            assert after.error == WORKER_LOST, f"{uuid}: a lost attempt not recorded: {attempts}"
            recoveries.append(after.at - kill_time)
        assert attempts[-1].retries >= len(attempts) - 1, f"{uuid}: uncounted: {attempts}"
    assert all(evidence.runs(m.uuid) >= 1 for m in messages)
    assert len(storm.kills) >= STORM_MIN_KILLS, "the run ended before the storm did much"
    runs = sum(evidence.runs(m.uuid) for m in messages)
    figures.update(
        messages=len(messages),
        kills=len(storm.kills),
        whole_pool_kills=sum(kill.whole_pool for kill in storm.kills),
        group_kills=sum(not kill.whole_pool for kill in storm.kills),
        lease_ms=STORM_LEASE_MS,
        runs=runs,
        messages_run_twice_or_more=len(repeated),
        extra_runs=runs - len(messages),
        lost=0,
        recovery_ms_median=int(statistics.median(recoveries)) if recoveries else None,
        recovery_ms_max=max(recoveries) if recoveries else None,
        drain_seconds=round(elapsed, 1),
        hygiene=hygiene.summary(),
    )
    lab.stop(storm.pools, EXIT_SECONDS)


@pytest.mark.timeout(120)
def test_sigterm_under_load_exits_zero_and_loses_nothing(
    lab: FaultLab, figures: dict[str, Any]
) -> None:
    grace = ("--grace_period", str(GRACE_MS))
    pools = [
        lab.cli_pool("thread", 8, *grace),
        lab.cli_pool("async", 20, *grace),
        lab.cli_pool("thread", 8, *grace),
    ]
    lab.wait_until_idle(pools)
    long_ones = lab.submit("work", [(SIGTERM_LONG_SECONDS,)] * SIGTERM_LONG)
    short_ones = lab.submit("work", [(0.01,)] * SIGTERM_SHORT)
    messages = long_ones + short_ones
    stopped: list[tuple[PoolProcess, int, float]] = []  # pool, SIGTERM time, exit seconds
    stopped_pids: dict[int, int] = {}  # pid -> when its pool got SIGTERM
    for index, fraction in ((0, 0.3), (1, 0.6)):
        eventually_done(lab, int(SIGTERM_SHORT * fraction))
        pool = pools[index]
        pids = pool.pids()
        sent = probe.now_ms()
        pool.signal(signal.SIGTERM)
        code = pool.wait(GRACE_MS / 1000 + EXIT_SECONDS)
        assert code == 0, pool.output()
        stopped.append((pool, sent, (probe.now_ms() - sent) / 1000))
        stopped_pids.update({pid: sent for pid in pids})
        pools[index] = lab.cli_pool(pool.name.split("-")[0], 20 if index else 8, *grace)
    lab.wait_until_settled(timeout=60)

    evidence = lab.evidence()
    lab.assert_all_succeeded(
        messages, [SIGTERM_LONG_SECONDS] * SIGTERM_LONG + [0.01] * SIGTERM_SHORT
    )
    hygiene = lab.assert_hygiene(live=0)
    released = 0
    for uuid, attempts in evidence.repeated().items():
        for before, after in itertools.pairwise(attempts):
            sent = stopped_pids.get(before.pid)
            assert sent is not None and before.at <= sent, (
                f"{uuid} ran again though no SIGTERM stopped its attempt: {attempts}"
            )
            assert after.retries == before.retries, f"{uuid}: a release counted: {attempts}"
            released += 1
    finished_in_grace = [
        attempt
        for attempts in evidence.attempts.values()
        for attempt in attempts
        if attempt.pid in stopped_pids
        and attempt.ended_at is not None
        and attempt.ended_at > stopped_pids[attempt.pid]
    ]
    figures.update(
        messages=len(messages),
        sigterms=len(stopped),
        exit_codes=[0 for _ in stopped],
        exit_seconds=[round(seconds, 2) for _, _, seconds in stopped],
        grace_ms=GRACE_MS,
        finished_within_grace=len(finished_in_grace),
        released_and_run_again=released,
        lost=0,
        hygiene=hygiene.summary(),
    )
    lab.stop(pools, GRACE_MS / 1000 + EXIT_SECONDS)


def eventually_done(lab: FaultLab, count: int) -> None:
    """Wait until ``count`` attempts have ended."""
    eventually(lambda: lab.probe.hlen(probe.ENDS) >= count, 60, f"{count} attempts ended")
