"""Poison messages: a task that kills its process on every attempt ends in the DLQ after
``max_retries`` (each crash counted as an attempt), and the pool keeps serving the rest.

In a thread pool the crash takes the whole process group down, so every message the group held
loses that attempt too (a poison message may even be used up by its neighbours' crashes before
it ran itself). Good messages have retries to spare and all succeed."""

from __future__ import annotations

import signal
from typing import Any

import pytest
from faultlab import FaultLab
from faultwork import settings

pytestmark = pytest.mark.slow

#: Good messages submitted before and after the poison ones.
NEIGHBOURS = {"thread": 200, "process": 200}
POISON = 3
EXIT_SECONDS = 20


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_message_that_crashes_its_process_every_time_ends_in_the_dlq(
    lab: FaultLab, kind: str, figures: dict[str, Any]
) -> None:
    pool = lab.cli_pool(kind, 4, log_level="INFO")
    lab.wait_until_idle([pool])
    before = lab.submit("count", [(i,) for i in range(NEIGHBOURS[kind])])
    poison = lab.submit("crash", [()] * POISON)
    after = lab.submit("count", [(i,) for i in range(NEIGHBOURS[kind])])
    lab.wait_until_settled(timeout=60)

    assert pool.alive, f"the pool died\n{pool.output()}"
    evidence = lab.evidence()
    attempts = settings.CRASH_MAX_RETRIES + 1
    poison_runs = [evidence.runs(m.uuid) for m in poison]
    assert all(runs <= attempts for runs in poison_runs), poison_runs
    if kind == "process":  # one message per process at a time: each crash is its own
        assert poison_runs == [attempts] * POISON
    for message in poison:
        retries = [a.retries for a in evidence.attempts.get(message.uuid, [])]
        assert retries == sorted(set(retries)), f"an attempt was not counted: {retries}"
    dead = {letter.uuid: letter for letter in lab.broker.dlq_list()}
    assert sorted(dead) == sorted(m.uuid for m in poison)
    for letter in dead.values():
        assert "WorkerLostError" in letter.reason, letter.reason
        assert letter.message is not None and letter.message.retries == attempts - 1
    assert {status for status, _ in lab.outcomes(poison)} == {"FAILED"}
    good = before + after
    lab.assert_all_succeeded(good, [m.args[0] for m in good])
    hygiene = lab.assert_hygiene(live=0)
    pool.signal(signal.SIGTERM)
    assert pool.wait(EXIT_SECONDS) == 0, pool.output()
    neighbour_runs = sum(evidence.runs(m.uuid) for m in good)
    figures.update(
        pool=kind,
        poison_messages=POISON,
        attempts_each=attempts,
        poison_runs=poison_runs,
        dead_letter_reason=next(iter(dead.values())).reason,
        good_messages=len(good),
        good_runs=neighbour_runs,
        good_rerun_after_their_process_crashed=neighbour_runs - len(good),
        lost=0,
        hygiene=hygiene.summary(),
    )
