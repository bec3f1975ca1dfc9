"""``ThreadWorkerPool`` starts process groups as load needs them and retires idle ones."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from poolharness import KINDS, Lab, eventually

from alsek.core.worker.sync import thread as thread_module

#: How long each message of the growth test runs (s).
RUN_SECONDS = 4.0


def test_groups_grow_under_load_and_shrink_to_the_floor_when_idle(
    make_lab: Callable[..., Lab], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(thread_module, "IDLE_GROUP_SECONDS", 0.3)
    lab = make_lab(KINDS["thread"])
    sleepy = lab.task("sleepy")
    with lab.pool(capacity=1, n_processes=3, n_process_floor=1) as running:
        eventually(lambda: len(running.pool.groups) == 1, what="the floor group")
        # Each run outlasts a group's start-up on a loaded machine (fork, imports, first
        # claim), so no group is done with its message before the third group claims one.
        messages = [sleepy.generate(args=(RUN_SECONDS,)) for _ in range(3)]
        eventually(lambda: len(running.pool.groups) == 3, what="three groups under load")
        eventually(lambda: all(lab.done(m) for m in messages), timeout=30, what="all done")
        eventually(lambda: len(running.pool.groups) == 1, timeout=5, what="back to the floor")
        assert running.alive
    # Each message ran in a process of its own: one thread per group, three at once.
    pids = {attempt["pid"] for m in messages for attempt in lab.attempts(m)}
    assert len(pids) == 3
