"""A pool runs tasks of its own kind only: a sync task given to an async pool, or an async task
given to a thread or process pool, is refused when the pool is built, by name."""

from __future__ import annotations

import pytest
from poolharness import Lab
from poolwork import pools

from alsek.exceptions import NoTasksFoundError

#: Pool behaviour that depends on the server: on Redis 6.2, Valkey 8.1 and a cluster.
pytestmark = pytest.mark.servers("redis", "valkey", "cluster")

REFUSAL = r"(an async pool cannot run sync|a thread or process pool cannot run async) tasks"


def test_a_task_of_the_other_kind_is_refused_by_name_when_the_pool_is_built(lab: Lab) -> None:
    own, other = pools.work_module(lab.kind.name), pools.other_work_module(lab.kind.name)
    own_broker, other_broker = (work.components(lab.url, lab.namespace)[0] for work in (own, other))
    mechanism = lab.kind.mechanism
    tasks = [
        own.build_task("add", own_broker, mechanism=mechanism),
        other.build_task("sleepy", other_broker, mechanism=mechanism),
        other.build_task("flaky", other_broker, mechanism=mechanism),
    ]
    with pytest.raises(NoTasksFoundError, match=rf"^{REFUSAL}: flaky, sleepy$"):
        pools.build_pool(lab.kind.name, tasks, 1)
