"""Skewed clocks: pools whose hosts are 90 s fast and 90 s slow, and a producer 45 s fast, share
a queue of delayed messages and of messages retried after a backoff. Redis's clock decides
readiness, so no message starts before its delay (or backoff) has passed by the true clock, and
none waits the skew out: every message is done long before 90 s."""

from __future__ import annotations

import time
from typing import Any

import pytest
from faultlab import FaultLab, scaled
from faultwork import settings
from faultwork.clock import ShiftedTime

import alsek.utils.temporal as temporal

pytestmark = pytest.mark.slow

#: How far each pool's clock is off (ms), and the producer's.
POOL_SKEWS_MS = (90_000, -90_000)
PRODUCER_SKEW_MS = 45_000
#: Delayed messages, and the delays they ask for (ms), in turn.
DELAYED = scaled(600, 300)
DELAYS_MS = (500, 1_000, 2_000)
#: Messages that fail once, then wait ``settings.FLAKY_BACKOFF_MS`` before their retry.
FLAKY = scaled(100, 50)
#: Everything is done well before the smallest skew could have been waited out.
SETTLE_SECONDS = 60
EXIT_SECONDS = 20


@pytest.mark.timeout(150)
def test_skewed_clocks_start_nothing_early_and_nothing_late(
    lab: FaultLab, figures: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pools = [lab.cli_pool("thread", 8, clock_skew_ms=skew) for skew in POOL_SKEWS_MS]
    lab.wait_until_idle(pools)

    monkeypatch.setattr(temporal, "time", ShiftedTime(PRODUCER_SKEW_MS))
    submitted_at: dict[str, int] = {}
    delayed = []
    for index in range(DELAYED):
        delay = DELAYS_MS[index % len(DELAYS_MS)]
        submitted_at_ms = int(time.time() * 1000)  # the true time, before the submit
        message = lab.tasks["work"].generate(args=(0.001,), delay=delay)
        submitted_at[message.uuid] = submitted_at_ms
        delayed.append((message, delay))
    flaky = lab.submit("flaky", [()] * FLAKY)
    monkeypatch.setattr(temporal, "time", time)
    started = time.monotonic()
    lab.wait_until_settled(timeout=SETTLE_SECONDS)
    settled_seconds = time.monotonic() - started

    evidence = lab.evidence()
    early, lateness = [], []
    for message, delay in delayed:
        [attempt] = evidence.attempts[message.uuid]
        waited = attempt.at - submitted_at[message.uuid]
        if waited < delay:
            early.append((message.uuid, delay, waited))
        lateness.append(waited - delay)
    assert not early, f"{len(early)} delayed messages started early: {early[:5]}"
    backoffs = []
    for message in flaky:
        first, second = evidence.attempts[message.uuid]
        assert first.ended_at is not None
        backoffs.append(second.at - first.ended_at)
    too_soon = [b for b in backoffs if b < settings.FLAKY_BACKOFF_MS]
    assert not too_soon, f"{len(too_soon)} retries started before their backoff: {too_soon[:5]}"
    lab.assert_all_succeeded([m for m, _ in delayed], [0.001] * len(delayed))
    lab.assert_all_succeeded(flaky, [1] * len(flaky))
    ran_in = {pid: pool.name for pool in pools for pid in pool.pids()}
    by_pool = {pool.name: 0 for pool in pools}
    for pid, count in evidence.by("pid").items():
        by_pool[ran_in.get(pid, "?")] = by_pool.get(ran_in.get(pid, "?"), 0) + count
    hygiene = lab.assert_hygiene(live=0)
    lab.stop(pools, EXIT_SECONDS)
    figures.update(
        pool_skews_ms=list(POOL_SKEWS_MS),
        producer_skew_ms=PRODUCER_SKEW_MS,
        delayed_messages=len(delayed),
        flaky_messages=len(flaky),
        started_early=0,
        lateness_ms_median=sorted(lateness)[len(lateness) // 2],
        lateness_ms_max=max(lateness),
        retry_wait_ms_min=min(backoffs),
        runs_by_pool=by_pool,
        settled_seconds=round(settled_seconds, 1),
        hygiene=hygiene.summary(),
    )
