"""Messages built for a role: pipeline steps and ``on_success``/``on_failure`` handlers.

A message built with ``submit=False`` may lack what its role adds (the previous result, the
``result=``/failure keywords); the role is checked when it is given, naming the problem.
"""

from __future__ import annotations

import pytest

from alsek.core.message import Message
from alsek.core.task.follow_ups import failure_handler, success_handler
from alsek.core.task.helpers import build_callback_message
from alsek.core.workflow import Pipeline, pipeline
from alsek.exceptions import ValidationError
from tests.polling import call
from tests.task.conftest import Kit


def report(tag: str, result: int) -> str:
    return f"{tag}: {result}"


def report_failure(tag: str, exception_type: str, exception_message: str) -> str:
    return f"{tag}: {exception_type}"


async def test_a_message_one_argument_short_is_built_for_a_pipeline(kit: Kit) -> None:
    task = kit.task()  # add(a, b)
    message = await call(task.generate, args=(1,), submit=False)
    assert message.args == (1,)
    with pytest.raises(ValidationError, match="missing a required argument: 'b'"):
        await call(task.generate, args=(1,))  # submitted now: it must fit as it is


async def test_a_pipeline_refuses_a_step_that_does_not_fit_with_the_result(kit: Kit) -> None:
    task = kit.task()
    first = await call(task.generate, args=(1, 2), submit=False)
    second = await call(task.generate, args=(1, 2), submit=False)  # would get 3 arguments
    with pytest.raises(ValidationError, match=r"as a pipeline step.*too many positional"):
        await call((first | second).run)
    assert not await call(kit.broker.exists, first)


async def test_pipe_ignore_steps_are_checked_as_they_are(kit: Kit) -> None:
    task = kit.task()
    first = await call(task.generate, args=(1, 2), submit=False)
    ignoring = await call(task.generate, args=(1,), submit=False, pipe_ignore=True)
    with pytest.raises(ValidationError, match="missing a required argument: 'b'"):
        await call(pipeline([first, ignoring]).run)


async def test_a_pipeline_is_a_chain_that_appends_each_result(kit: Kit) -> None:
    task = kit.task()
    steps = [await call(task.generate, args=args, submit=False) for args in ((1, 2), (10,), (7,))]
    flow = steps[0] | steps[1] | steps[2]
    assert isinstance(flow, Pipeline) and len(flow) == 3
    await call(flow.run)
    [claimed] = await kit.claim()
    assert claimed.uuid == steps[0].uuid
    second = build_callback_message(claimed, result=3)
    assert second is not None
    assert (second.uuid, second.args, second.progenitor_uuid) == (steps[1].uuid, (10, 3),
                                                                  steps[0].uuid)  # fmt: skip
    third = build_callback_message(second, result=13)
    assert third is not None and third.args == (7, 13)
    assert steps[2].progenitor_uuid == steps[0].uuid  # what result() reads


def test_pipelines_refuse_what_is_not_a_step() -> None:
    with pytest.raises(TypeError, match="Messages, Groups or Pipelines"):
        pipeline(["add"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one step"):
        pipeline([])
    loose = Message("add", queue="q", args=(1, 2))
    with pytest.raises(TypeError, match=r"not built by task.generate\(..., submit=False\)"):
        pipeline([loose]).run()


async def test_handlers_are_checked_for_the_keywords_they_get(sync_kit: Kit) -> None:
    kit = sync_kit
    task, reporter, failing = (kit.task(f) for f in (None, report, report_failure))
    good = await call(reporter.generate, args=("ok",), submit=False)
    assert good.args == ("ok",)  # result= comes with the parent's success
    with pytest.raises(ValidationError, match="as an on_failure handler"):
        await call(task.generate, args=(1, 2), on_failure=good, submit=False)
    on_failure = await call(failing.generate, args=("bad",), submit=False)
    parent = await call(task.generate, args=(1, 2), on_success=good, on_failure=on_failure)
    done = success_handler(parent, 3)
    failed = failure_handler(parent, KeyError("k"))
    assert done is not None and failed is not None
    assert done.kwargs == {"result": 3} and done.args == ("ok",)
    assert failed.kwargs == {"exception_type": "KeyError", "exception_message": "'k'"}
    again = success_handler(parent, 3)
    assert again is not None and done.uuid == again.uuid != good.uuid  # a repeat is a no-op
    with pytest.raises(TypeError, match="on_success must be a Message"):
        await call(task.generate, args=(1, 2), on_success="report")
