"""A warm child of the process pool killed mid-run (SIGKILL) takes its ``process`` span with
it: the pool's process, which sees the death, emits one in its place. Checked with the SDK's
in-memory exporter in this process, where the pool runs (in a thread of its own)."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from alsek import Broker, task
from alsek.contrib.opentelemetry import STAND_IN_ATTRIBUTE, instrument
from alsek.core.worker import ProcessWorkerPool
from alsek.storage.backends import RedisBackend
from tests.polling import eventually

#: How long a test waits for what happens at once on a healthy machine.
PATIENCE_SECONDS = 60


def finished(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


@pytest.mark.slow  # a process pool, its child killed
def test_the_span_of_a_killed_childs_run_is_ended_by_the_pool(
    redis_url: str, namespace: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    broker = Broker(RedisBackend(redis_url, namespace=namespace))
    instrument(broker, provider)  # this process's provider: the pool's process, not its children

    @task(broker, name="killed", queue="lost", mechanism="process", max_retries=0, backoff=None)
    def killed() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    pool = ProcessWorkerPool(tasks=[killed], n_processes=1)
    serving = threading.Thread(target=pool.run, name="lost-child-pool", daemon=True)
    serving.start()
    try:
        message = killed.generate()
        [run] = eventually(
            lambda: finished(exporter, "process lost") or None,
            PATIENCE_SECONDS,
            "the span of the killed run",
        )
    finally:
        pool.stop(PATIENCE_SECONDS * 1000)
        serving.join(PATIENCE_SECONDS)
    [send] = finished(exporter, "send lost")
    assert run.kind is SpanKind.CONSUMER
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes is not None
    assert run.attributes["error.type"] == "WorkerLostError"
    assert run.attributes["messaging.message.id"] == message.uuid
    assert run.attributes["messaging.destination.name"] == "lost"
    assert run.attributes[STAND_IN_ATTRIBUTE] is True
    assert [event.name for event in run.events] == ["exception"]
    assert run.parent is not None and run.parent.span_id == send.context.span_id
    assert run.context.trace_id == send.context.trace_id
    assert run.end_time is not None and run.start_time is not None
    assert run.end_time >= run.start_time
    broker.backend.conn.close()
