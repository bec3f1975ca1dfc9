"""Memory: a pool running tens of thousands of messages keeps a flat RSS, and Redis gives back
what the messages took once they are acked (and the finish marks, which outlive each message's
lease and the pools' re-sends so that a repeated ack is recognised, have run out)."""

from __future__ import annotations

import re
import signal
import time
from typing import Any

import pytest
from faultlab import FaultLab, eventually, scaled
from faultwork import probe

from alsek.core.broker.scripts import get_script

pytestmark = pytest.mark.slow

#: Messages run after the warm-up (the issue's size).
MESSAGES = scaled(50_000, 20_000)
#: Messages run first, so that the pool's caches, threads and connections are all in place.
WARM_UP = 2_000
SUBMIT_BATCH = 5_000
#: Growth of the pool's RSS (all its processes) allowed over the run, in kB.
RSS_GROWTH_LIMIT_KB = 8 * 1024
#: How far above its baseline Redis may stay once every message is acked, in bytes.
REDIS_SLACK_BYTES = 256 * 1024
#: The pool's lease (ms).
LEASE_MS = 5_000
_FINISH_MEMORY = re.search(r"FINISH_MEMORY_MS = (\d+)", get_script("ack").text)
assert _FINISH_MEMORY, "the ack script no longer says how long a finish mark lives"
#: How long a finished delivery's mark lives at least (ms), as the broker's scripts say.
FINISH_MEMORY_MS = int(_FINISH_MEMORY.group(1))
#: How long after the last ack Redis has to get back to its baseline: the finish marks live
#: for the rest of the lease, and at least FINISH_MEMORY_MS.
REDIS_RETURN_SECONDS = max(LEASE_MS, FINISH_MEMORY_MS) / 1000 + 10


def ran(lab: FaultLab) -> int:
    """Messages run so far (``noop`` counts them on one key)."""
    return int(lab.probe.get(probe.COUNT) or 0)


def wait_for_runs(lab: FaultLab, count: int, timeout: float) -> None:
    eventually(lambda: ran(lab) >= count, timeout, f"{count} runs", interval=0.2)


@pytest.mark.timeout(240)
def test_a_pool_keeps_a_flat_rss_and_redis_returns_to_its_baseline(
    lab: FaultLab, figures: dict[str, Any]
) -> None:
    pool = lab.launched_pool("thread", 8, lease_ttl=LEASE_MS)
    lab.wait_until_idle([pool])
    lab.submit("noop", [()] * WARM_UP)
    wait_for_runs(lab, WARM_UP, 60)
    lab.wait_until_idle([pool])
    redis_baseline = lab.used_memory()
    rss_start = pool.rss_kb()

    started = time.monotonic()
    samples: list[tuple[int, int]] = []  # (messages run, pool RSS kB)
    redis_peak = redis_baseline
    for start in range(0, MESSAGES, SUBMIT_BATCH):
        lab.submit("noop", [()] * min(SUBMIT_BATCH, MESSAGES - start), batch=SUBMIT_BATCH)
        redis_peak = max(redis_peak, lab.used_memory())
    deadline = time.monotonic() + 200
    while ran(lab) < WARM_UP + MESSAGES:
        assert time.monotonic() < deadline, f"only {ran(lab) - WARM_UP} of {MESSAGES} ran"
        samples.append((ran(lab) - WARM_UP, pool.rss_kb()))
        redis_peak = max(redis_peak, lab.used_memory())
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    lab.wait_until_idle([pool])
    rss_end = pool.rss_kb()

    returned = time.monotonic()
    redis_after = lab.used_memory()
    while redis_after - redis_baseline > REDIS_SLACK_BYTES:
        claim_caches = len(list(lab.conn.scan_iter(match="*:claim:*", count=1000)))
        assert time.monotonic() - returned < REDIS_RETURN_SECONDS, (
            f"Redis holds {redis_after - redis_baseline} bytes more than before the run "
            f"{REDIS_RETURN_SECONDS} s after the last ack ({claim_caches} claim replies cached)"
        )
        time.sleep(0.1)
        redis_after = lab.used_memory()
    returned_seconds = time.monotonic() - returned
    hygiene = lab.assert_hygiene(live=0)
    assert ran(lab) == WARM_UP + MESSAGES
    halfway = next(rss for count, rss in samples if count >= MESSAGES // 2) if samples else rss_end
    figures.update(
        messages=MESSAGES,
        warm_up=WARM_UP,
        pool=(
            f"thread pool, 1 process x 8 threads, lease {LEASE_MS} ms, no status tracker or "
            "result store"
        ),
        rss_start_kb=rss_start,
        rss_halfway_kb=halfway,
        rss_end_kb=rss_end,
        rss_max_kb=max([rss_start, rss_end, *(rss for _, rss in samples)]),
        redis_baseline_bytes=redis_baseline,
        redis_peak_bytes=redis_peak,
        redis_after_bytes=redis_after,
        redis_back_within_seconds=round(returned_seconds, 2),
        drain_seconds=round(elapsed, 1),
        hygiene=hygiene.summary(),
    )
    assert rss_end - rss_start < RSS_GROWTH_LIMIT_KB, figures
    pool.signal(signal.SIGTERM)
    assert pool.wait(20) == 0, pool.output()
