"""The tasks of the tracing tests, traced by ``alsek.contrib.opentelemetry``: each process that
imports this module (the test, and every process of the pools) exports its finished spans with
the OpenTelemetry SDK to a file of its own in ``$ALSEK_TRACE_DIR``, so the test reads the spans
of every process.

Queues: ``thread`` (``thread_hello``, ``thread_flaky``, ``thread_doomed``, and the chain
``thread_hello`` -> ``thread_step``), ``process`` (``process_hello``), ``async``
(``async_hello``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opsenv import NAMESPACE_VAR, URL_VAR

from alsek import current_message, task
from alsek.contrib.opentelemetry import instrument
from alsek.core.broker import AsyncBroker, Broker
from alsek.core.message import Message
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend

TRACE_DIR_VAR = "ALSEK_TRACE_DIR"


class FileSpanExporter(SpanExporter):
    """Appends each finished span, as JSON, to ``$ALSEK_TRACE_DIR/<pid>.jsonl`` (both read at
    export: a forked child writes its own file, and each test of the test process its own
    directory, the global provider being set once per process)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        path = os.path.join(os.environ[TRACE_DIR_VAR], f"{os.getpid()}.jsonl")
        with open(path, "a") as out:
            for span in spans:
                record = json.loads(span.to_json())
                record["pid"] = os.getpid()
                out.write(json.dumps(record) + "\n")
        return SpanExportResult.SUCCESS


if not isinstance(trace.get_tracer_provider(), TracerProvider):  # once per process
    _provider = TracerProvider()
    _provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter()))
    trace.set_tracer_provider(_provider)

_url, _namespace = os.environ[URL_VAR], os.environ[NAMESPACE_VAR]
broker = Broker(RedisBackend(_url, namespace=_namespace))
async_broker = AsyncBroker(AsyncRedisBackend(_url, namespace=_namespace))
instrument(broker)
instrument(async_broker)

_thread = {"queue": "thread", "backoff": None, "max_retries": 0}


@task(broker, **_thread)
def thread_hello() -> str:
    with trace.get_tracer("tracedwork").start_as_current_span("inside the task"):
        return "hello"


@task(broker, **_thread)
def thread_step(message: Message) -> str:
    return f"after {message.previous_result}"


@task(broker, **{**_thread, "max_retries": 1})
def thread_flaky() -> str:
    message = current_message()
    if message is not None and message.retries == 0:
        raise RuntimeError("first attempt fails on purpose")
    return "second time lucky"


@task(broker, **_thread)
def thread_doomed() -> None:
    raise KeyError("doomed on purpose")


@task(broker, queue="process", mechanism="process", max_retries=0)
def process_hello() -> str:
    return "hello"


@task(async_broker, queue="async", max_retries=0)
async def async_hello() -> str:
    return "hello"
