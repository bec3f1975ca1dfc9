"""Task limits through real pools: a concurrency limit holds across a thread, a process and an
async pool running at once (the tasks count themselves in Redis); a per-key limit is per key,
and a hot key's backlog does not hold back another key; a pool held back by a limit does not
spin; a SIGKILLed worker's slot comes back with its lease; a rate limit of 50/s holds within
10 % over 10 s."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
import redis
from poolharness import KINDS, Lab, PoolKind, eventually
from poolwork import probe

from alsek.core.message import Message

#: How long a counted run lasts: long enough for runs to overlap when nothing holds them back.
RUN_SECONDS = 0.3
#: Lease of the pool killed with SIGKILL.
LEASE_TTL_MS = 1_000


@pytest.fixture
def conn(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def seen_max(conn: redis.Redis, account: str) -> int:
    """The most runs of ``account`` (``"all"``: of any) seen at once by the tasks."""
    return max((int(value) for value in conn.lrange(probe.key("seen", account), 0, -1)), default=0)


def all_done(lab: Lab, messages: list[Message], timeout: float = 60) -> None:
    eventually(lambda: all(lab.done(m) for m in messages), timeout=timeout, what="every run")


def test_a_concurrency_limit_holds_across_three_pools_at_once(
    make_lab: Callable[[PoolKind], Lab], conn: redis.Redis
) -> None:
    labs = [make_lab(KINDS[name]) for name in ("thread", "process", "async")]
    producers = [lab.task("gauged", concurrency_limit=2) for lab in labs]
    messages = [producers[0].generate(args=("x", RUN_SECONDS)) for _ in range(12)]
    with ExitStack() as stack:
        for lab in labs:
            stack.enter_context(lab.pool(capacity=2))
        all_done(labs[0], messages)
    assert seen_max(conn, "all") == 2  # never more, and the limit was reached
    pids = {labs[0].attempts(m)[0]["pid"] for m in messages}
    print(f"concurrency 2 across 3 pools: max seen 2, runs in {len(pids)} processes")
    assert [labs[0].starts(m) for m in messages] == [1] * len(messages)  # none held back twice


def test_a_per_key_limit_limits_each_key_alone(lab: Lab, conn: redis.Redis) -> None:
    producer = lab.task("gauged", concurrency_limit=1, concurrency_key=lambda a, s: a)
    messages = [producer.generate(args=(account, RUN_SECONDS)) for account in "abababab"]
    with lab.pool(capacity=4):
        all_done(lab, messages)
    assert (seen_max(conn, "a"), seen_max(conn, "b")) == (1, 1)
    assert seen_max(conn, "all") == 2  # the two keys ran side by side


#: Messages of one hot key queued ahead of another key's: three times what a claim parks.
HOT_BACKLOG = 300


def test_a_hot_keys_backlog_does_not_hold_back_another_key(lab: Lab, conn: redis.Redis) -> None:
    producer = lab.task("gauged", concurrency_limit=1, concurrency_key=lambda a, s: a)
    hot = producer.generate_many(args_list=[("hot", RUN_SECONDS)] * HOT_BACKLOG)
    cold = producer.generate(args=("cold", 0.01))
    with lab.pool(capacity=2):
        eventually(lambda: lab.starts(cold), timeout=30, what="the cold message starts")
        order = lab.order()
    ahead = order.index(cold.uuid)
    print(f"[{lab.kind.name}] cold started after {ahead} of {HOT_BACKLOG} hot messages")
    # Not after the hot backlog (one at a time, each RUN_SECONDS): a few hot ones at most ran.
    assert ahead < HOT_BACKLOG // 6
    assert seen_max(conn, "hot") == 1
    assert {lab.starts(m) for m in hot[ahead + 2 :]} == {0}


def _script_calls(conn: redis.Redis) -> int:
    stats = conn.info("commandstats")
    names = ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_evalsha_ro", "cmdstat_eval_ro")
    return sum(int(stats[name]["calls"]) for name in names if name in stats)


@pytest.mark.slow
def test_a_pool_held_back_by_a_limit_does_not_spin(lab: Lab, conn: redis.Redis) -> None:
    producer = lab.task("gauged", concurrency_limit=1)
    holder = producer.generate(args=("x", 30.0))
    waiting = [producer.generate(args=("x", 0.01)) for _ in range(5)]
    with lab.pool(capacity=4):
        eventually(lambda: lab.starts(holder), timeout=20, what="the holder runs")
        before, started = _script_calls(conn), time.monotonic()
        eventually(lambda: time.monotonic() - started > 2.0, timeout=5, what="2 s")
        calls, seconds = _script_calls(conn) - before, time.monotonic() - started
        assert [lab.starts(m) for m in waiting] == [0] * 5
    print(f"[{lab.kind.name}] held back for {seconds:.1f} s: {calls} script calls")
    # An idle pool claims a few times a second (its idle wait here is 100 ms); one that spun
    # on the held-back messages would make thousands of calls.
    assert calls < 40 * seconds


@pytest.mark.slow
def test_a_killed_workers_slot_comes_back_with_its_lease(
    make_lab: Callable[[PoolKind], Lab],
) -> None:
    lab = make_lab(KINDS["thread"])
    served = lab.served()["gauged"]  # concurrency_limit=1
    holder = served.generate(args=("k", 30.0))
    queued = served.generate(args=("k", 0.01))
    first = lab.launched_pool(2, lease_ttl=LEASE_TTL_MS)
    eventually(lambda: lab.last_beat(holder), timeout=20, what="the holder runs")
    assert lab.starts(queued) == 0
    first.kill_session()
    killed_at = probe.now_ms()

    second = lab.launched_pool(2, lease_ttl=LEASE_TTL_MS)
    eventually(lambda: lab.done(holder) and lab.done(queued), timeout=30, what="both ran")
    [run] = lab.attempts(queued)
    assert run["at"] >= killed_at  # held back while the killed worker held the slot
    assert lab.attempts(holder)[1]["retries"] == 1  # the lost run counts as an attempt
    second.signal(signal.SIGTERM)
    assert second.wait(15) == 0, second.output()


@pytest.mark.slow
def test_a_rate_limit_of_50_per_second_holds_within_10_percent_over_10_seconds(
    make_lab: Callable[[PoolKind], Lab],
) -> None:
    lab = make_lab(KINDS["thread"])
    producer = lab.task("add", rate_limit="50/s")
    messages = producer.generate_many(args_list=[(i, i) for i in range(650)])
    with lab.pool(capacity=8):
        all_done(lab, messages, timeout=40)
    starts = sorted(lab.attempts(m)[0]["at"] for m in messages)
    first = starts[0]
    in_window = sum(1 for at in starts if first + 1_000 <= at < first + 11_000)
    print(f"rate 50/s: {in_window} starts in 10 s (expected 500)")
    assert 450 <= in_window <= 550
