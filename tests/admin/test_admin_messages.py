"""``messages()``: a page of a queue's messages in one state, in the order that state keeps."""

from __future__ import annotations

from types import ModuleType

import pytest
import states
from opsfixtures import AdminView


async def test_ready_messages_come_in_claim_order_across_tasks(
    ops: ModuleType, admin: AdminView
) -> None:
    low = states.ready(ops, 2, priority=5)
    boom = ops.boom.generate(priority=1)
    high = states.ready(ops, 2, priority=0)
    page = await admin.messages("ops")
    assert [m.uuid for m in page] == [m.uuid for m in [*high, boom, *low]]
    assert [m.task for m in page] == ["add", "add", "boom", "add", "add"]
    assert all(m.state == "ready" for m in page)
    assert [m.uuid for m in await admin.messages("ops", offset=1, limit=2)] == [
        high[1].uuid,
        boom.uuid,
    ]
    assert [m.uuid for m in await admin.messages("ops", task="boom")] == [boom.uuid]


async def test_delayed_messages_come_by_ready_time(ops: ModuleType, admin: AdminView) -> None:
    later = states.delayed(ops, 1, delay=900_000)
    sooner = states.delayed(ops, 1, delay=300_000)
    ops.sleepy.generate(args=(1,), delay=600_000)
    page = await admin.messages("ops", state="delayed")
    assert page[0].uuid == sooner[0].uuid
    assert page[-1].uuid == later[0].uuid
    assert [m.task for m in await admin.messages("ops", state="delayed", task="sleepy")] == [
        "sleepy"
    ]
    assert await admin.messages("ops") == []


async def test_running_messages_are_the_leased_ones(ops: ModuleType, admin: AdminView) -> None:
    leased = states.running(ops, 2)
    states.ready(ops, 1)
    page = await admin.messages("ops", state="running")
    assert {m.uuid for m in page} == {m.uuid for m in leased}
    assert {m.task for m in page} == {"sleepy"}


async def test_a_bad_state_or_page_is_refused(admin: AdminView) -> None:
    with pytest.raises(ValueError, match="state must be one of"):
        await admin.messages("ops", state="sleeping")
    with pytest.raises(ValueError, match="limit must be"):
        await admin.messages("ops", limit=0)
