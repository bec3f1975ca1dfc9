"""Bad input, each case on its own: a clear error at submit where the producer can be told,
else the dead-letter queue with a reason; never another message affected.

Cases a worker meets run on a lab of their own with a thread pool (``alsek thread-pool``): each
submits good messages around its bad one and checks that they ran and that the keyspace is
clean. Cases refused at submit share one lab without a pool and check that nothing was written.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from faultlab import FaultLab, eventually
from faultwork import settings

from alsek.core.broker import Broker
from alsek.core.consumer import Consumer
from alsek.core.message import Message
from alsek.core.task import Task
from alsek.defaults import DEFAULT_QUEUE
from alsek.exceptions import TaskFailedError
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.storage.serialization import BinarySerializer, Serializer
from alsek.testing import RedisServer

pytestmark = pytest.mark.slow

GOOD = 5
TEN_MB = 10 * 1024 * 1024


@pytest.fixture
def served_lab(lab: FaultLab) -> Iterator[FaultLab]:
    """A lab with a thread pool; the pool must exit cleanly at the end."""
    pool = lab.cli_pool("thread", 4, log_level="INFO")
    lab.wait_until_idle([pool])
    yield lab
    pool.signal(signal.SIGTERM)
    assert pool.wait(20) == 0, pool.output()


@pytest.fixture(scope="module")
def submit_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultLab]:
    """A lab without pools, for what is refused at submit."""
    server = RedisServer().start()
    lab = FaultLab(server, "alsek-bad-submit", tmp_path_factory.mktemp("bad-submit"))
    try:
        yield lab
    finally:
        lab.close()
        server.stop()


def good_neighbours(lab: FaultLab) -> list[Message]:
    """A few good messages to submit around a bad one."""
    return lab.submit("count", [(i,) for i in range(GOOD)])


def settle_and_check(lab: FaultLab, good: list[Message]) -> None:
    """Every message settles, the good ones succeeded, and the keyspace is clean."""
    lab.wait_until_settled(timeout=30)
    lab.assert_all_succeeded(good, [m.args[0] for m in good])
    lab.assert_hygiene(live=0)


def dead_letter(lab: FaultLab, uuid: str) -> Any:
    """The dead letter of ``uuid`` (waiting for it to appear)."""
    letters = eventually(
        lambda: [d for d in lab.broker.dlq_list(settings.QUEUE) if d.uuid == uuid],
        30,
        f"{uuid} in the DLQ",
    )
    return letters[0]


def nothing_written(lab: FaultLab, before: set[str]) -> None:
    """No alsek key appeared (a refused submit wrote nothing)."""
    after = set(lab.conn.scan_iter(match=f"{lab.namespace}:*"))
    assert after == before, f"keys written by a refused submit: {sorted(after - before)}"


# -- at the worker: the dead-letter queue, with a reason ------------------------------------


def test_a_task_no_pool_serves_stays_queued_and_visible(served_lab: FaultLab) -> None:
    ghost = Task(
        lambda: None,
        served_lab.broker,
        name="ghost",
        queue=settings.QUEUE,
        status_tracker=served_lab.tracker,
        result_store=served_lab.store,
        default_result_ttl=settings.RESULT_TTL_MS,
    )
    good = good_neighbours(served_lab)
    message = ghost.generate()
    good += good_neighbours(served_lab)
    eventually(
        lambda: all(status == "SUCCEEDED" for status, _ in served_lab.outcomes(good)),
        30,
        "the good neighbours succeeded",
    )
    served_lab.assert_all_succeeded(good, [m.args[0] for m in good])
    # The pool serving ``count`` and ``work`` never claims it: it waits, visible, for a pool
    # that serves ``ghost`` (another service, or the next deploy).
    assert served_lab.broker.exists(message)
    assert served_lab.tracker.get(message).value.name == "SUBMITTED"
    assert served_lab.broker.dlq_count(settings.QUEUE) == 0
    assert served_lab.evidence().runs(message.uuid) == 0
    served_lab.assert_hygiene(live=1)


class _Fixed(Serializer):
    """A producer's serializer that writes ``body`` whatever the message."""

    body = ""

    @classmethod
    def forward(cls, obj: Any) -> Any:
        return cls.body

    @staticmethod
    def reverse(obj: Any) -> Any:
        return json.loads(obj)


def foreign_producer(lab: FaultLab, serializer: Serializer) -> Task:
    """A ``count`` task whose broker writes bodies with ``serializer`` (another producer)."""
    backend = RedisBackend(lab.url, namespace=lab.namespace, serializer=serializer)
    return Task(lambda i: i, Broker(backend), name="count", queue=settings.QUEUE)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param("{this is not json", "JSONDecodeError", id="not-json"),
        pytest.param("[1, 2, 3]", "the body is a list, not a dict", id="json-list"),
        pytest.param('{"hello": "world"}', "hello", id="json-dict-of-the-wrong-fields"),
        pytest.param('{"task_name": "count", "queue": 7}', "queue", id="json-wrong-types"),
    ],
)
def test_a_body_the_worker_cannot_decode_goes_to_the_dlq_with_the_decoding_error(
    served_lab: FaultLab, body: str, reason: str
) -> None:
    serializer = type("Garbage", (_Fixed,), {"body": body})()
    good = good_neighbours(served_lab)
    message = foreign_producer(served_lab, serializer).generate(args=(1,))
    good += good_neighbours(served_lab)
    letter = dead_letter(served_lab, message.uuid)
    assert letter.reason.startswith("Undecodable message body"), letter.reason
    assert reason in letter.reason, letter.reason
    assert letter.raw == body and letter.message is None
    settle_and_check(served_lab, good)
    # The claim recorded RUNNING before the body was found unusable; FAILED replaced it.
    assert served_lab.tracker.get(message).value.name == "FAILED"


def test_a_dill_body_for_a_json_worker_goes_to_the_dlq(served_lab: FaultLab) -> None:
    good = good_neighbours(served_lab)
    message = foreign_producer(served_lab, BinarySerializer()).generate(args=(1,))
    good += good_neighbours(served_lab)
    letter = dead_letter(served_lab, message.uuid)
    assert letter.reason.startswith("Undecodable message body"), letter.reason
    assert "JSONDecodeError" in letter.reason, letter.reason
    settle_and_check(served_lab, good)
    assert served_lab.tracker.get(message).value.name == "FAILED"


def test_a_result_the_serializer_cannot_store_fails_the_message_saying_why(
    served_lab: FaultLab,
) -> None:
    good = good_neighbours(served_lab)
    message = served_lab.tasks["unstorable"].generate()
    good += good_neighbours(served_lab)
    letter = dead_letter(served_lab, message.uuid)
    assert "cannot be stored" in letter.reason and "object" in letter.reason, letter.reason
    settle_and_check(served_lab, good)
    assert served_lab.tracker.get(message).value.name == "FAILED"
    with pytest.raises(TaskFailedError, match="cannot be stored"):
        served_lab.store.get(message)


def test_a_ten_megabyte_argument_runs_like_any_other(served_lab: FaultLab) -> None:
    good = good_neighbours(served_lab)
    message = served_lab.tasks["count"].generate(args=("x" * TEN_MB,))
    good += good_neighbours(served_lab)
    assert served_lab.store.get(message, timeout=30_000) == "x" * TEN_MB
    settle_and_check(served_lab, good)


# -- at submit: a clear error, nothing written ------------------------------------------


def test_arguments_json_cannot_encode_are_refused_at_submit(submit_lab: FaultLab) -> None:
    before = set(submit_lab.conn.scan_iter(match=f"{submit_lab.namespace}:*"))
    with pytest.raises(TypeError, match="field 'args' cannot be serialized"):
        submit_lab.tasks["count"].generate(args=(object(),))
    with pytest.raises(TypeError, match="field 'kwargs' cannot be serialized"):
        submit_lab.tasks["count"].generate(kwargs={"i": {1, 2}})
    nothing_written(submit_lab, before)


@pytest.mark.parametrize("name", ["a:b", "a{b", "a}b", "a b", "tab\there", "bell\a"])
@pytest.mark.parametrize("kind", ["queue", "task"])
def test_queue_and_task_names_with_separators_are_refused(
    submit_lab: FaultLab, kind: str, name: str
) -> None:
    options = {"queue": name} if kind == "queue" else {"name": name, "queue": settings.QUEUE}
    with pytest.raises(ValueError, match=re.escape(f"{kind} name {name!r} contains")):
        Task(lambda: None, submit_lab.broker, **options)
    if kind == "queue":  # a good task, a bad queue at generate
        before = set(submit_lab.conn.scan_iter(match=f"{submit_lab.namespace}:*"))
        with pytest.raises(ValueError, match=re.escape(f"queue name {name!r} contains")):
            submit_lab.tasks["count"].generate(args=(1,), queue=name)
        nothing_written(submit_lab, before)


def test_empty_queue_and_task_names_mean_the_defaults_and_are_refused_where_they_cannot(
    submit_lab: FaultLab,
) -> None:
    # SPEC: ``queue or DEFAULT_QUEUE`` and ``name or function.__name__``.
    task = Task(lambda: None, submit_lab.broker, name="", queue="")
    assert (task.name, task.queue) == ("<lambda>", DEFAULT_QUEUE)
    with pytest.raises(ValueError, match="queue name must not be empty"):
        Consumer(submit_lab.broker, subset=[""])
    with pytest.raises(ValueError, match="task name must not be empty"):
        Consumer(submit_lab.broker, subset={settings.QUEUE: [""]})


@pytest.mark.parametrize(
    ("options", "error"),
    [
        pytest.param({"priority": -1}, "priority", id="negative-priority"),
        pytest.param({"priority": 2**60}, "priority", id="huge-priority"),
        pytest.param({"priority": 1.5}, "priority", id="float-priority"),
        pytest.param({"delay": -1000}, "delay", id="negative-delay"),
        pytest.param({"delay": 10**15}, "expire before it is ready", id="huge-delay"),
        pytest.param({"ready_at": 2**62}, "expire before it is ready", id="huge-ready-at"),
        pytest.param({"timeout_override": -1}, "timeout", id="negative-timeout"),
    ],
)
def test_out_of_range_priority_delay_and_timeout_are_refused_at_submit(
    submit_lab: FaultLab, options: dict[str, Any], error: str
) -> None:
    before = set(submit_lab.conn.scan_iter(match=f"{submit_lab.namespace}:*"))
    with pytest.raises((ValueError, TypeError), match=error):
        submit_lab.tasks["count"].generate(args=(1,), **options)
    nothing_written(submit_lab, before)


def test_a_huge_timeout_is_no_timeout(served_lab: FaultLab) -> None:
    message = served_lab.tasks["count"].generate(args=(7,), timeout_override=10**20)
    assert served_lab.store.get(message, timeout=30_000) == 7
    settle_and_check(served_lab, [message])
