"""Redis itself fails under load: a restart (AOF, every write on disk before its reply) and
connections cut every 500 ms. Pools wait the outage out and finish the run; every message runs
exactly once (nothing lost, nothing leased twice)."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from faultlab import REDIS_DOWN, FaultLab, PoolProcess, eventually, scaled
from faultwork import probe

pytestmark = pytest.mark.slow

#: Messages of each scenario, and how long each runs (so that some are always in flight).
MESSAGES = scaled(5_000, 3_000)
TASK_SECONDS = 0.005
#: Period of ``CLIENT KILL TYPE normal``, and how many rounds of cuts a run lasts at least.
CUT_EVERY_SECONDS = 0.5
MIN_CUT_ROUNDS = 6
EXIT_SECONDS = 20


def start_pools(lab: FaultLab) -> list[PoolProcess]:
    """Two thread pools and an async pool (CLI), all waiting for work."""
    pools = [lab.cli_pool("thread", 8), lab.cli_pool("thread", 8), lab.cli_pool("async", 30)]
    lab.wait_until_idle(pools)
    return pools


def stop_pools(pools: list[PoolProcess]) -> list[str]:
    """SIGTERM every pool, check it exits 0; returns the pools that logged an outage."""
    for pool in pools:
        pool.signal(signal.SIGTERM)
    for pool in pools:
        assert pool.wait(EXIT_SECONDS) == 0, pool.output()
    return [pool.name for pool in pools if "Redis is unreachable" in pool.output(10**7)]


def check_exactly_once(lab: FaultLab, messages: list[Any]) -> dict[str, Any]:
    """Every message ran once and succeeded; the keyspace is clean. Returns the figures."""
    evidence = lab.evidence()
    runs = [evidence.runs(message.uuid) for message in messages]
    assert runs.count(1) == len(runs), (
        f"{sum(r > 1 for r in runs)} ran twice or more, {runs.count(0)} never ran: "
        f"{list(evidence.repeated().values())[:3]}"
    )
    lab.assert_all_succeeded(messages, [TASK_SECONDS] * len(messages))
    hygiene = lab.assert_hygiene(live=0)
    starts = sorted(a.at for attempts in evidence.attempts.values() for a in attempts)
    return {
        "messages": len(messages),
        "runs": sum(runs),
        "duplicates": sum(runs) - len(messages),
        "lost": runs.count(0),
        "longest_stall_ms": max(b - a for a, b in itertools.pairwise(starts)),
        "hygiene": hygiene.summary(),
    }


def wait_for_progress(lab: FaultLab, fraction: float) -> None:
    """Wait until ``fraction`` of the messages have run."""
    count = int(MESSAGES * fraction)
    eventually(lambda: lab.probe.hlen(probe.ENDS) >= count, 60, f"{count} runs")


@pytest.mark.timeout(150)
def test_a_redis_restart_mid_run_loses_nothing_and_leases_nothing_twice(
    make_lab: Callable[..., FaultLab], figures: dict[str, Any]
) -> None:
    lab = make_lab(aof=True)
    pools = start_pools(lab)
    messages = lab.submit("work", [(TASK_SECONDS,)] * MESSAGES)
    wait_for_progress(lab, 0.4)
    killed_at = probe.now_ms()
    lab.server.restart()
    back_at = probe.now_ms()
    lab.wait_until_settled(timeout=90)

    figures.update(check_exactly_once(lab, messages))
    evidence = lab.evidence()
    first_after = min(
        a.at for attempts in evidence.attempts.values() for a in attempts if a.at > back_at
    )
    figures.update(
        redis_down_ms=back_at - killed_at,
        first_run_after_restart_ms=first_after - back_at,
        pools_that_logged_the_outage=stop_pools(pools),
    )


#: Messages per submit call while connections are being cut.
SUBMIT_BATCH = 100


class ConnectionCutter:
    """Runs ``CLIENT KILL TYPE normal`` every ``CUT_EVERY_SECONDS`` in a thread of its own."""

    def __init__(self, url: str) -> None:
        self.conn = redis.Redis.from_url(url)
        self.rounds = 0
        self.cut = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(CUT_EVERY_SECONDS):
            self.cut += int(self.conn.execute_command("CLIENT", "KILL", "TYPE", "normal"))
            self.rounds += 1

    def __enter__(self) -> ConnectionCutter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.conn.close()


@pytest.mark.timeout(150)
def test_connections_cut_every_500_ms_lose_nothing_and_run_nothing_twice(
    lab: FaultLab, figures: dict[str, Any]
) -> None:
    pools = start_pools(lab)
    started = time.monotonic()
    wave = [(TASK_SECONDS,)] * (MESSAGES // 5)
    messages: list[Any] = []
    deadline = time.monotonic() + 100
    with ConnectionCutter(lab.url) as cutter:
        # Batches small enough to go through between two cuts however slow the machine: a
        # batch that takes longer than CUT_EVERY_SECONDS to send is cut every time it is sent.
        messages += lab.submit("work", wave * 5, batch=SUBMIT_BATCH)
        # However fast the pools are, the run lasts until enough cuts happened: while too
        # few, more messages come as the queue runs low.
        while (live := settled_or_live(lab)) or cutter.rounds < MIN_CUT_ROUNDS:
            assert time.monotonic() < deadline, f"{live} messages never settled"
            if live < len(wave) and cutter.rounds < MIN_CUT_ROUNDS:
                messages += lab.submit("work", wave, batch=SUBMIT_BATCH)
            time.sleep(0.05)
    elapsed = time.monotonic() - started
    figures.update(check_exactly_once(lab, messages))
    figures.update(
        cut_rounds=cutter.rounds,
        connections_cut=cutter.cut,
        drain_seconds=round(elapsed, 1),
        pools_that_logged_an_outage=stop_pools(pools),
    )
    assert cutter.rounds >= MIN_CUT_ROUNDS


def settled_or_live(lab: FaultLab) -> int:
    """Messages not settled yet (a cut connection counts as "some")."""
    try:
        return lab.live_statuses()
    except REDIS_DOWN:
        return 1
