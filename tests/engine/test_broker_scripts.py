"""The broker's Lua protocol itself: its reply vocabulary, its one lease check, its errors."""

from __future__ import annotations

import re
from importlib import resources

import pytest
import redis

from alsek.core.broker import BaseBroker, ClaimSource
from alsek.core.broker.replies import MEANINGS
from alsek.core.broker.scripts import LIBRARY_PARTS, SCRIPT_NAMES, get_script, library_text
from alsek.core.message import Message
from alsek.core.steps.drivers import run
from alsek.core.steps.ops import ScriptCall, Steps, call
from alsek.exceptions import LeaseLostError
from tests.polling import call as maybe_await

OWNER = "lock:test-host:process:1:lease:abc"


def _lua(name: str) -> str:
    return resources.files("alsek.core.broker.scripts").joinpath(name).read_text()


def test_every_reply_of_the_scripts_has_a_meaning_in_python() -> None:
    library = library_text()
    replies = set(re.findall(r"^local ([A-Z_]+) = '([A-Z_]+)'", library, re.M))
    assert replies, "the library declares no replies"
    assert all(name == value for name, value in replies)
    assert {value for _, value in replies} == set(MEANINGS)
    for name in SCRIPT_NAMES:
        body = _lua(f"{name}.lua")
        quoted = set(re.findall(r"return '([A-Z_]+)'", body))
        assert not quoted, f"{name}.lua returns {quoted} instead of the library's reply names"


def test_each_library_part_uses_only_names_of_the_parts_before_it() -> None:
    # A local used before its part declares it would be read as a nil global, failing only
    # when that line runs: so the order of LIBRARY_PARTS is checked here, not by Redis.
    declared_later: dict[str, str] = {}
    for part in reversed(LIBRARY_PARTS):
        source = re.sub(r"--[^\n]*", "", _lua(f"{part}.lua"))
        for name, later in declared_later.items():
            used = re.search(rf"(?<![\w.:]){re.escape(name)}(?!\w)", source)
            assert not used, f"{part}.lua uses {name}, declared later in {later}.lua"
        for name in re.findall(r"^local (?:function )?(\w+)", source, re.M):
            declared_later[name] = part


def test_the_lease_is_checked_in_one_place() -> None:
    sources = [library_text()] + [_lua(f"{name}.lua") for name in SCRIPT_NAMES]
    checks = sum(source.count("redis.call('GET', lock_key(") for source in sources)
    assert checks == 1


async def test_an_unknown_effect_opcode_fails_the_script(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    message = Message("work", queue="q")
    await maybe_await(broker.submit, message)  # a finish of a message gone applies nothing
    prefix = f"{namespace}:"
    request = ScriptCall(
        get_script("ack"),
        (f"{prefix}queues:{{q}}:tasks",),
        (prefix, 0, "q", message.uuid, "", "", "", 1, "X"),
    )

    def ack_with_a_bogus_effect() -> Steps[object]:
        [reply] = yield call(request)
        return reply

    with pytest.raises(redis.ResponseError, match="unknown effect opcode"):
        run(ack_with_a_bogus_effect(), redis_client)


async def test_a_repeated_release_by_the_same_delivery_is_a_no_op(broker: BaseBroker) -> None:
    message = Message("work", queue="q")
    await maybe_await(broker.submit, message)
    [claimed] = (await maybe_await(broker.claim, [ClaimSource("q")], 1, OWNER)).messages
    repeat = claimed.clone()
    await maybe_await(broker.release, claimed)
    await maybe_await(broker.release, repeat)  # the reply was lost: sent again, ALREADY
    [again] = (await maybe_await(broker.claim, [ClaimSource("q")], 1, OWNER)).messages
    assert again.uuid == message.uuid
    assert (await maybe_await(broker.claim, [ClaimSource("q")], 1, OWNER)).messages == []


async def test_a_delivery_that_gave_the_message_back_cannot_finish_it(
    broker: BaseBroker,
) -> None:
    message = Message("work", queue="q")
    await maybe_await(broker.submit, message)
    [claimed] = (await maybe_await(broker.claim, [ClaimSource("q")], 1, OWNER)).messages
    late = claimed.clone()
    await maybe_await(broker.release, claimed)
    for operation in (broker.ack, broker.fail):
        with pytest.raises(LeaseLostError):
            await maybe_await(operation, late.clone())
    assert await maybe_await(broker.exists, message)


async def test_a_release_with_someone_elses_lease_is_refused(broker: BaseBroker) -> None:
    await maybe_await(broker.submit, Message("work", queue="q"))
    [claimed] = (await maybe_await(broker.claim, [ClaimSource("q")], 1, OWNER)).messages
    stolen = claimed.clone()
    stolen.linked_lock = {"name": "x", "owner_id": "someone-else"}
    with pytest.raises(LeaseLostError):
        await maybe_await(broker.release, stolen)
    assert (await maybe_await(broker.renew, [claimed])) == [True]
