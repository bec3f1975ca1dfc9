"""Pipelines and ``on_success``/``on_failure`` handlers through a real pool of every kind."""

from __future__ import annotations

import pytest
from poolharness import Lab

from alsek.core.task.follow_ups import failure_handler, success_handler
from alsek.core.workflow import group, pipeline
from alsek.exceptions import TaskFailedError


def test_a_pipeline_passes_each_result_to_the_next_step(lab: Lab) -> None:
    add = lab.task("add")
    steps = [
        add.generate(args=(1, 2), submit=False),
        add.generate(args=(10,), submit=False),
        add.generate(args=(100,), submit=False),
    ]
    flow = (steps[0] | steps[1] | steps[2]).run()
    with lab.pool():
        assert flow.result(lab.store, timeout=15_000) == 113
        assert flow.results(lab.store, timeout=15_000) == [3, 13, 113]
    assert [lab.starts(step) for step in steps] == [1, 1, 1]


def test_a_step_built_with_pipe_ignore_gets_no_result(lab: Lab) -> None:
    add = lab.task("add")
    flow = pipeline(
        [add.generate(args=(1, 2), submit=False), add.generate(args=(5, 5), submit=False,
                                                               pipe_ignore=True)]
    ).run()  # fmt: skip
    with lab.pool():
        assert flow.results(lab.store, timeout=15_000) == [3, 10]


def test_a_failed_step_ends_the_pipeline(lab: Lab) -> None:
    add, failing = lab.task("add"), lab.task("always_fail")
    last = add.generate(args=(1, 1), submit=False, pipe_ignore=True)
    flow = pipeline([add.generate(args=(1, 2), submit=False),
                     failing.generate(submit=False, pipe_ignore=True), last]).run()  # fmt: skip
    with lab.pool(), pytest.raises(TaskFailedError, match="always fails"):
        flow.results(lab.store, timeout=15_000)
    assert lab.starts(last) == 0
    assert not lab.broker.exists(last)


def test_on_success_is_submitted_once_with_the_result(lab: Lab) -> None:
    add, report = lab.task("add"), lab.task("outcome_report")
    handler = report.generate(args=("done",), submit=False)
    message = add.generate(args=(2, 3), on_success=handler)
    submitted = success_handler(message, None)
    assert submitted is not None
    with lab.pool():
        assert lab.store.get(submitted, timeout=15_000) == "done: 5"
    assert lab.starts(submitted) == 1


def test_on_failure_is_submitted_once_with_the_failure(lab: Lab) -> None:
    failing, report = lab.task("always_fail"), lab.task("outcome_report")
    handler = report.generate(args=("failed",), submit=False)
    message = failing.generate(on_failure=handler, on_success=handler)
    submitted = failure_handler(message, ValueError())
    assert submitted is not None
    with lab.pool():
        assert lab.store.get(submitted, timeout=15_000) == (
            "failed: ValueError: attempt 1 of a task that always fails"
        )
    assert lab.starts(submitted) == 1
    never = success_handler(message, None)
    assert never is not None and lab.starts(never) == 0


# -- groups ---------------------------------------------------------------------------------------


def test_a_group_runs_its_members_then_its_completion_callback_once(lab: Lab) -> None:
    add, report = lab.task("add"), lab.task("outcome_report")
    members = [add.generate(args=(i, i), submit=False) for i in range(5)]
    callback = report.generate(args=("all done",), kwargs={"result": "-"}, submit=False)
    flow = group(members).add_completion_callback(callback)
    assert flow.run() is flow
    assert not flow.completed(lab.store)
    with lab.pool(capacity=3):
        assert flow.results(lab.store, timeout=15_000) == [0, 2, 4, 6, 8]
        assert lab.store.get(callback, timeout=15_000) == "all done: -"
    assert flow.completed(lab.store)
    assert lab.starts(callback) == 1
    assert [lab.starts(m) for m in members] == [1] * 5


def test_a_member_that_fails_names_itself_and_stops_the_callback(lab: Lab) -> None:
    add, failing = lab.task("add"), lab.task("always_fail")
    callback = add.generate(args=(1, 1), submit=False)
    flow = group([add.generate(args=(1, 2), submit=False), failing.generate(submit=False)])
    flow.add_completion_callback(callback).run()
    with lab.pool(), pytest.raises(TaskFailedError, match=r"Member 1 of group .* always fails"):
        flow.results(lab.store, timeout=15_000)
    assert not lab.broker.exists(callback)
    assert lab.starts(callback) == 0


def test_a_pipeline_in_a_group_counts_once_its_last_step_succeeded(lab: Lab) -> None:
    add = lab.task("add")
    chain = add.generate(args=(1, 2), submit=False) | add.generate(args=(10,), submit=False)
    callback = add.generate(args=(5, 5), submit=False)
    flow = group([chain, add.generate(args=(2, 2), submit=False)])
    flow.add_completion_callback(callback).run()
    with lab.pool():
        assert flow.results(lab.store, timeout=15_000) == [13, 4]
        assert lab.store.get(callback, timeout=15_000) == 10


def test_a_group_step_gets_the_previous_result_and_the_next_step_waits_for_it(lab: Lab) -> None:
    add = lab.task("add")
    fan_out = group(
        [add.generate(args=(10,), submit=False), add.generate(args=(20,), submit=False)]
    )
    after = add.generate(args=(5, 5), submit=False)  # the group's completion: fed nothing
    flow = (add.generate(args=(1, 2), submit=False) | fan_out | after).run()
    with lab.pool(capacity=3):
        assert flow.results(lab.store, timeout=15_000) == [3, [13, 23], 10]
    assert lab.starts(after) == 1


def test_a_pipeline_may_start_with_a_group(lab: Lab) -> None:
    add = lab.task("add")
    first = group(
        [add.generate(args=(1, 1), submit=False), add.generate(args=(2, 2), submit=False)]
    )
    flow = (first | add.generate(args=(3, 3), submit=False)).run()
    with lab.pool():
        assert flow.results(lab.store, timeout=15_000) == [[2, 4], 6]
        assert flow.result(lab.store, timeout=15_000) == 6
