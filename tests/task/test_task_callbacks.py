"""Callback chains: folding a tuple into a chain, and building each next message."""

from __future__ import annotations

import pytest

from alsek.core.message import Message
from alsek.core.task import build_callback_message, parse_callback
from tests.polling import call
from tests.task.conftest import Kit


def _message(name: str) -> Message:
    return Message(name, queue="q")


def test_a_single_callback_is_returned_unchanged() -> None:
    message = _message("a")
    assert parse_callback(message) is message
    assert message.callback_message_data is None


def test_a_tuple_becomes_a_nested_chain_in_place() -> None:
    a, b, c = _message("a"), _message("b"), _message("c")
    head = parse_callback((a, b, c))
    assert head is a
    assert a.callback_message_data is not None
    assert a.callback_message_data["uuid"] == b.uuid
    assert a.callback_message_data["callback_message_data"]["uuid"] == c.uuid
    assert b.callback_message_data is not None and b.callback_message_data["uuid"] == c.uuid
    assert c.callback_message_data is None
    assert a.descendant_uuids == [b.uuid, c.uuid]


def test_a_tuple_member_with_a_callback_already_is_refused() -> None:
    a, b = _message("a"), _message("b")
    b.update(callback_message_data=_message("x").data)
    with pytest.raises(AttributeError, match="already has a callback"):
        parse_callback((a, b))
    assert a.callback_message_data is None


@pytest.mark.parametrize(
    ("callback", "error"), [((), ValueError), ((_message("a"), "b"), TypeError)]
)
def test_bad_tuples_are_refused(callback: tuple, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_callback(callback)


def test_no_chain_builds_no_next_message() -> None:
    assert build_callback_message(_message("a"), result=1) is None


async def test_a_three_step_chain(kit: Kit) -> None:
    first_task, second_task, third_task = (kit.task(name=n) for n in ("first", "second", "third"))
    second = await call(second_task.defer().generate, args=(10, 0))
    third = await call(third_task.defer().generate, args=(100, 0))
    root = await call(first_task.generate, args=(1, 2), callback=(second, third))
    assert not await call(kit.broker.exists, second)  # deferred: built, not submitted
    [stored] = await kit.claim()
    assert stored.descendant_uuids == [second.uuid, third.uuid]

    step_two = build_callback_message(stored, result=3)
    assert step_two is not None
    assert (step_two.uuid, step_two.task_name, step_two.args) == (second.uuid, "second", (10, 0))
    assert step_two.previous_result == 3
    assert step_two.previous_message_uuid == root.uuid
    assert step_two.progenitor_uuid == root.uuid

    step_three = build_callback_message(step_two, result=13)
    assert step_three is not None
    assert (step_three.uuid, step_three.task_name) == (third.uuid, "third")
    assert step_three.previous_result == 13
    assert step_three.previous_message_uuid == second.uuid
    assert step_three.progenitor_uuid == root.uuid  # the chain keeps its first message's uuid

    assert build_callback_message(step_three, result=113) is None
    await call(kit.broker.submit, step_two)  # what a pool does with it
    [claimed] = await kit.claim()
    assert claimed.previous_result == 3 and claimed.uuid == second.uuid


async def test_a_single_callback_message(kit: Kit) -> None:
    then = await call(kit.task(name="then").defer().generate, args=(1, 0))
    root = await call(kit.task().generate, args=(1, 2), callback=then)
    assert root.callback_message_data == then.data


def test_building_does_not_change_the_parent() -> None:
    parent = parse_callback((_message("a"), _message("b")))
    before = parent.data
    build_callback_message(parent, result={"x": 1})
    assert parent.data == before
