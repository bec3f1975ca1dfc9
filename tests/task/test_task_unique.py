"""Unique jobs: ``generate(unique_key=..., unique_ttl=..., unique_mode=...)``, decided in the
submit script, under concurrent submitters, and released when the holder finishes."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from alsek.core.broker import ClaimSource
from alsek.core.task.follow_ups import check_unique
from tests.polling import call, until
from tests.task.conftest import OWNER, Kit


async def test_simple_mode_yields_to_the_queued_or_running_holder(kit: Kit) -> None:
    task = kit.task()
    first = await call(task.generate, args=(1, 1), unique_key="k")
    second = await call(task.generate, args=(2, 2), unique_key="k")
    assert second.uuid == first.uuid and second.args == (1, 1)  # the holder, as stored
    [claimed] = await kit.claim()
    running = await call(task.generate, args=(3, 3), unique_key="k")
    assert running.uuid == first.uuid  # running still holds it
    await call(kit.broker.ack, claimed)
    after = await call(task.generate, args=(4, 4), unique_key="k")
    assert after.uuid != first.uuid and await call(kit.broker.exists, after)
    other = await call(task.generate, args=(5, 5), unique_key="other")
    assert other.uuid != after.uuid


async def test_a_failed_or_revoked_holder_lets_go(kit: Kit) -> None:
    task = kit.task(max_retries=0)
    first = await call(task.generate, args=(1, 1), unique_key="k")
    [claimed] = await kit.claim()
    await call(kit.broker.fail, claimed)
    second = await call(task.generate, args=(2, 2), unique_key="k")
    assert second.uuid != first.uuid
    await call(task.revoke, second)
    third = await call(task.generate, args=(3, 3), unique_key="k")
    assert third.uuid not in (first.uuid, second.uuid)


async def test_throttle_mode_allows_one_per_ttl_even_once_finished(kit: Kit) -> None:
    task = kit.task()
    first = await call(task.generate, args=(1, 1), unique_key="t", unique_ttl=60_000,
                       unique_mode="throttle")  # fmt: skip
    [claimed] = await kit.claim()
    await call(kit.broker.ack, claimed)
    again = await call(task.generate, args=(2, 2), unique_key="t", unique_ttl=60_000,
                       unique_mode="throttle")  # fmt: skip
    assert again.uuid == first.uuid  # the run this window already had
    assert not await call(kit.broker.exists, again)
    short = await call(task.generate, args=(1, 1), unique_key="s", unique_ttl=50,
                       unique_mode="throttle")  # fmt: skip

    async def after_window() -> bool:
        message = await call(task.generate, args=(2, 2), unique_key="s", unique_ttl=50,
                             unique_mode="throttle")  # fmt: skip
        return message.uuid != short.uuid

    assert await until(after_window, 5, "the throttle window passed")


async def test_debounce_replaces_the_waiting_holder(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker)
    first = await call(task.generate, args=(1, 1), unique_key="d", unique_mode="debounce")
    second = await call(task.generate, args=(2, 2), unique_key="d", unique_mode="debounce")
    assert second.uuid != first.uuid
    assert not await call(kit.broker.exists, first)
    assert not await call(kit.tracker.exists, first)  # its SUBMITTED went with it
    [claimed] = await kit.claim()
    assert claimed.uuid == second.uuid and claimed.args == (2, 2)
    third = await call(task.generate, args=(3, 3), unique_key="d", unique_mode="debounce")
    assert third.uuid != second.uuid and await call(kit.broker.exists, claimed)  # running: kept
    assert await call(kit.broker.exists, third)


def test_concurrent_submitters_write_one_message(sync_kit: Kit) -> None:
    task = sync_kit.task()
    standing: list[str] = []
    start = threading.Barrier(8)

    def submit(i: int) -> None:
        start.wait()
        standing.append(task.generate(args=(i, i), unique_key="race").uuid)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(standing)) == 1
    assert [m.uuid for m in sync_kit_claim(sync_kit)] == standing[:1]


def sync_kit_claim(kit: Kit) -> list[Any]:
    return list(kit.broker.claim([ClaimSource("q")], 100, OWNER).messages)


def test_generate_many_with_one_key_writes_the_first(sync_kit: Kit) -> None:
    task = sync_kit.task()
    messages = task.generate_many(args_list=[(1, 1), (2, 2), (3, 3)], unique_key="batch")
    assert [sync_kit.broker.exists(m) for m in messages] == [True, False, False]


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"unique_key": ""}, "non-empty string"),
        ({"unique_key": "k", "unique_mode": "latest"}, "simple, throttle, debounce"),
        ({"unique_key": "k", "unique_ttl": 0}, "int of ms > 0"),
        ({"unique_key": "k", "unique_mode": "throttle"}, "needs a unique_ttl"),
        ({"unique_ttl": 5}, "need a unique_key"),
    ],
)
def test_bad_unique_options_are_refused(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_unique(options)
