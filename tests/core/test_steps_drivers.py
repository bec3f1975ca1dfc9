"""The step vocabulary and its two drivers, in memory (ops that need no Redis)."""

from __future__ import annotations

import pytest
import redis

from alsek.core.steps.drivers import async_run, async_stream, run, stream
from alsek.core.steps.ops import (
    Emit,
    Invoke,
    RoundTrip,
    Script,
    ScriptCall,
    Sleep,
    Steps,
    call,
)
from alsek.core.steps.outage import sent_through_outage
from alsek.core.steps.waiting import first_emitted


def doubled(value: int) -> Steps[int]:
    twice = yield Invoke(lambda x: 2 * x, (value,))
    return int(twice)


def recovering() -> Steps[str]:
    try:
        yield Invoke(int, ("not a number",))
    except ValueError as error:
        return f"handled: {type(error).__name__}"
    return "not raised"


def counting(up_to: int) -> Steps[str]:
    for number in range(up_to):
        yield Emit(number)
        yield Sleep(0)
    return "done"


def test_run_answers_each_op_and_returns_the_result() -> None:
    assert run(doubled(21)) == 42


def test_a_failed_op_is_raised_at_its_yield() -> None:
    assert run(recovering()) == "handled: ValueError"


def test_stream_hands_out_what_the_operation_emits() -> None:
    assert list(stream(counting(3))) == [0, 1, 2]


def test_run_refuses_an_operation_that_emits() -> None:
    with pytest.raises(TypeError, match="streams values"):
        run(counting(1))


def test_first_emitted_stops_at_the_first_accepted_value() -> None:
    def pick() -> Steps[tuple[object, bool]]:
        return (yield from first_emitted(counting(5), lambda value: value == 2))

    assert run(pick()) == (2, True)


async def test_the_async_driver_awaits_what_an_invoke_returns() -> None:
    async def triple(value: int) -> int:
        return 3 * value

    def operation() -> Steps[int]:
        return int((yield Invoke(triple, (5,))))

    assert await async_run(operation()) == 15
    assert await async_run(recovering()) == "handled: ValueError"
    assert [value async for value in async_stream(counting(2))] == [0, 1]


def test_a_round_trip_without_a_client_is_refused_inside_the_operation() -> None:
    def operation() -> Steps[str]:
        try:
            yield call(("PING",))
        except TypeError as error:
            return str(error)
        return "sent"

    assert "needs a Redis client" in run(operation())


def test_a_round_trip_is_atomic_or_batched_and_atomic_ones_take_commands_only() -> None:
    script = Script.from_text("noop", "return 1")
    with pytest.raises(ValueError, match="either atomic"):
        RoundTrip((("PING",),), atomic=True, batched=True)
    with pytest.raises(ValueError, match="plain commands"):
        RoundTrip((ScriptCall(script, ("k",)),), atomic=True)
    assert ScriptCall(script, ("k",), ("a",)).command() == ("EVALSHA", script.sha, 1, "k", "a")


# -- requests sent again through an outage --------------------------------------------------------


def test_a_round_trip_cut_off_is_sent_again_as_is_after_a_pause() -> None:
    op = call(("GET", "k"))
    steps = sent_through_outage(op, patience_ms=60_000, pauses=(10, 100))
    assert steps.send(None) is op
    pause = steps.throw(redis.ConnectionError("cut"))
    assert isinstance(pause, Sleep) and pause.seconds == 0.01
    assert steps.send(None) is op  # the very same requests: their request ids recognise it
    with pytest.raises(StopIteration) as done:
        steps.send(["value"])
    assert done.value.value == ["value"]


def test_an_outage_that_outlasts_the_patience_is_raised() -> None:
    steps = sent_through_outage(call(("GET", "k")), patience_ms=0, pauses=(10, 100))
    steps.send(None)
    with pytest.raises(redis.TimeoutError):
        steps.throw(redis.TimeoutError("still down"))
