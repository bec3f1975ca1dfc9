"""``alsek.contrib.opentelemetry``: spans from the submitting process and from every pool
kind's workers (threads in process groups, warm child processes, asyncio tasks), checked for
their parentage and attributes once exported by the SDK in each process."""

from __future__ import annotations

import importlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import dill
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opsfixtures import Pools

from alsek.contrib.opentelemetry import TRACE_METADATA_KEY, OpenTelemetryMiddleware
from alsek.core.message import Message
from tests.polling import eventually

Span = dict[str, Any]


@pytest.fixture
def trace_dir(metrics_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "spans"
    directory.mkdir()
    metrics_env["ALSEK_TRACE_DIR"] = str(directory)
    monkeypatch.setenv("ALSEK_TRACE_DIR", str(directory))
    return directory


@pytest.fixture
def work(trace_dir: Path) -> Iterator[ModuleType]:
    module = importlib.reload(importlib.import_module("tracedwork"))
    yield module
    module.broker.backend.conn.close()


def spans(directory: Path) -> list[Span]:
    return [json.loads(line) for path in directory.glob("*.jsonl") for line in path.open()]


def named(found: list[Span], name: str, **attributes: Any) -> list[Span]:
    return [
        span
        for span in found
        if span["name"] == name
        and all(span["attributes"].get(key) == value for key, value in attributes.items())
    ]


def parent_of(span: Span) -> str | None:
    return span["parent_id"]


def span_id(span: Span) -> str:
    return str(span["context"]["span_id"])


def trace_id(span: Span) -> str:
    return str(span["context"]["trace_id"])


def wait_for(directory: Path, name: str, count: int = 1, **attributes: Any) -> list[Span]:
    return eventually(
        lambda: (
            (found := named(spans(directory), name, **attributes)) and len(found) >= count and found
        ),
        60,
        f"{count} span(s) {name} {attributes}",
    )


def check_send_then_process(directory: Path, message: Message, queue: str) -> Span:
    """The PRODUCER span of ``message``'s submit, and its CONSUMER span as its child."""
    [send] = wait_for(directory, f"send {queue}", **{"messaging.message.id": message.uuid})
    [run] = wait_for(directory, f"process {queue}", **{"messaging.message.id": message.uuid})
    assert send["kind"] == "SpanKind.PRODUCER" and run["kind"] == "SpanKind.CONSUMER"
    assert parent_of(run) == span_id(send) and trace_id(run) == trace_id(send)
    assert run["pid"] != send["pid"]  # across the process boundary
    assert run["attributes"] == {
        "messaging.system": "alsek",
        "messaging.destination.name": queue,
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.message.id": message.uuid,
        "alsek.task.name": message.task_name,
        "alsek.retries": 0,
    }
    assert send["attributes"]["messaging.operation.type"] == "send"
    assert run["status"]["status_code"] == "UNSET"
    return run


@pytest.mark.slow  # a pool in a subprocess per kind
@pytest.mark.parametrize("kind", ["thread", "process", "async"])
def test_a_run_is_the_child_of_its_submit_in_every_pool_kind(
    kind: str, work: ModuleType, trace_dir: Path, pools: Pools
) -> None:
    pool = pools.start(kind, package="tracedwork")
    if kind == "async":  # submitted by the (traced) sync broker of the same Redis
        message = Message("async_hello", queue="async")
        work.broker.submit(message)
    else:
        message = getattr(work, f"{kind}_hello").generate()
    assert set(message.metadata[TRACE_METADATA_KEY]) == {"traceparent"}  # stored with it
    run = check_send_then_process(trace_dir, message, kind)
    if kind == "thread":
        [inside] = wait_for(trace_dir, "inside the task")
        assert parent_of(inside) == span_id(run)  # the run's span is current in the task
    pool.signal(signal.SIGTERM)
    assert pool.wait(30) == 0, pool.output()


@pytest.mark.slow  # a pool in a subprocess
def test_failures_retries_and_callbacks_continue_the_trace(
    work: ModuleType, trace_dir: Path, pools: Pools
) -> None:
    pool = pools.start("thread", package="tracedwork")
    doomed = work.thread_doomed.generate()
    flaky = work.thread_flaky.generate()
    root = work.thread_hello.generate(callback=work.thread_step.defer().generate())

    [failed] = wait_for(trace_dir, "process thread", **{"messaging.message.id": doomed.uuid})
    assert failed["attributes"]["error.type"] == "KeyError"
    assert failed["status"]["status_code"] == "ERROR"
    assert [event["name"] for event in failed["events"]] == ["exception"]

    attempts = wait_for(trace_dir, "process thread", 2, **{"messaging.message.id": flaky.uuid})
    [send] = named(spans(trace_dir), "send thread", **{"messaging.message.id": flaky.uuid})
    assert sorted(a["attributes"]["alsek.retries"] for a in attempts) == [0, 1]
    assert {parent_of(a) for a in attempts} == {span_id(send)}
    assert {a["status"]["status_code"] for a in attempts} == {"ERROR", "UNSET"}

    [root_run] = wait_for(trace_dir, "process thread", **{"messaging.message.id": root.uuid})
    [step_run] = wait_for(trace_dir, "process thread", **{"alsek.task.name": "thread_step"})
    [step_send] = named(spans(trace_dir), "send thread", **{"alsek.task.name": "thread_step"})
    assert parent_of(step_send) == span_id(root_run)  # submitted by the root's run
    assert parent_of(step_run) == span_id(step_send)
    assert trace_id(step_run) == trace_id(root_run)
    pool.signal(signal.SIGTERM)
    assert pool.wait(30) == 0, pool.output()


def test_the_middleware_travels_without_its_provider() -> None:
    middleware = OpenTelemetryMiddleware(TracerProvider())
    copy = dill.loads(dill.dumps(middleware))
    assert isinstance(copy, OpenTelemetryMiddleware) and copy._provider is None
