"""Load: thousands of messages through two thread pools and an async pool at once, each message
run exactly once, with its result and its status."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from faultlab import FaultLab

pytestmark = pytest.mark.slow

#: The issue's size; the default run uses it too.
MESSAGES = 20_000
#: Seconds a pool gets to exit after SIGTERM.
EXIT_SECONDS = 20


@pytest.mark.timeout(180)
def test_every_message_runs_exactly_once_across_three_pools(
    lab: FaultLab, figures: dict[str, Any]
) -> None:
    pools = [lab.cli_pool("thread", 8), lab.cli_pool("thread", 8), lab.cli_pool("async", 50)]
    lab.wait_until_idle(pools)
    pids = {pid: pool.name for pool in pools for pid in pool.pids()}

    started = time.monotonic()
    messages = lab.submit("count", [(i,) for i in range(MESSAGES)])
    submitted = time.monotonic() - started
    lab.wait_until_settled(timeout=150, what=f"{MESSAGES} messages settled")
    elapsed = time.monotonic() - started

    evidence = lab.evidence()
    runs = [evidence.runs(message.uuid) for message in messages]
    not_once = sum(1 for count in runs if count != 1)
    assert not_once == 0, f"{not_once} messages did not run exactly once"
    lab.assert_all_succeeded(messages, range(MESSAGES))
    hygiene = lab.assert_hygiene(live=0)

    by_pool = {pool.name: 0 for pool in pools}
    for pid, count in evidence.by("pid").items():
        assert pid in pids, f"{count} runs by process {pid}, of no pool"
        by_pool[pids[pid]] += count
    assert all(by_pool.values()), f"a pool ran nothing: {by_pool}"
    for pool in pools:
        pool.signal(signal.SIGTERM)
    exit_codes = [pool.wait(EXIT_SECONDS) for pool in pools]
    assert exit_codes == [0, 0, 0], [pool.output() for pool in pools]

    figures.update(
        messages=MESSAGES,
        pools="2 thread pools (1 process x 8 threads) + 1 async pool (50 tasks)",
        runs=sum(runs),
        duplicates=sum(runs) - MESSAGES,
        lost=sum(1 for count in runs if count == 0),
        runs_by_pool=by_pool,
        runs_by_kind=evidence.by("kind"),
        submit_seconds=round(submitted, 2),
        drain_seconds=round(elapsed, 2),
        messages_per_second=round(MESSAGES / elapsed),
        hygiene=hygiene.summary(),
    )
