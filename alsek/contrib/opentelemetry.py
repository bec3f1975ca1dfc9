"""OpenTelemetry traces of alsek messages (the ``alsek[otel]`` extra: opentelemetry-api).

``instrument(broker)`` adds an ``OpenTelemetryMiddleware`` to a broker. Then each submit opens
a PRODUCER span ``send {queue}`` and writes its trace context into the message's ``metadata``
(key ``alsek.trace``, W3C ``traceparent``/``tracestate`` through the configured propagator);
each run opens a CONSUMER span ``process {queue}``, child of that context, in whatever runs it
(a thread pool's threads, a process pool's children, an asyncio pool's tasks), current while
the task runs so the task's own spans nest under it. A retry keeps the message's context, so
every attempt is a child of the same producer span; a callback submitted by a run is a child
of that run's span: a chain is one trace.

Attributes follow the semantic conventions for messaging: ``messaging.system`` (``alsek``),
``messaging.destination.name`` (the queue), ``messaging.operation.name`` and ``.type``
(``send``/``process``), ``messaging.message.id`` (the uuid), and ``alsek.task.name``,
``alsek.retries``; a run that raised gets ``error.type`` (the exception's class), the
exception recorded and an error status (``SkipMessage`` is no error).

A process pool's child that is killed mid-run (a timeout, a revocation, a shutdown, or
SIGKILL from outside: ``WorkerLostError``) takes its ``process`` span with it, unended and
unexported: no process can end a span that lives in another's memory. The pool's process, which
sees the death and finishes the message, then emits a ``process {queue}`` span in its place:
same parent and attributes, ``alsek.span.stand_in`` true, ``error.type`` naming why
(``WorkerLostError``...), an error status; spans the task had opened inside the lost one are
lost with it.

Spans go to the global tracer provider of each process (``trace.set_tracer_provider``): set
it up where your tasks are imported, so the pools' processes have it too. A provider given to
the middleware is used in the process that built it only (it does not travel with the broker
to worker processes).
"""

from __future__ import annotations

import asyncio
import threading
from contextvars import ContextVar
from typing import Any

from alsek.core.message import Message
from alsek.core.middleware import CONTROL_EXCEPTIONS, Middleware
from alsek.core.run_timing import run_started_at_ms
from alsek.exceptions import SkipMessage

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as error:  # pragma: no cover - depends on the extra
    raise ImportError(
        "alsek.contrib.opentelemetry needs opentelemetry-api: pip install 'alsek[otel]'"
    ) from error

__all__ = ["STAND_IN_ATTRIBUTE", "TRACE_METADATA_KEY", "OpenTelemetryMiddleware", "instrument"]

#: The ``metadata`` key holding the producer's trace context.
TRACE_METADATA_KEY = "alsek.trace"
#: Set (true) on a ``process`` span emitted by the pool's process in place of the span of a
#: run whose process was killed or died (see ``OpenTelemetryMiddleware.after_process``).
STAND_IN_ATTRIBUTE = "alsek.span.stand_in"
_INSTRUMENTATION = "alsek"
_SEND_SPAN = "alsek.otel.send"  # ``ephemeral_state`` keys
_RUN_SPAN = "alsek.otel.process"
_RUN_TOKEN = "alsek.otel.token"

#: The context of the run under way or just ended here: the parent of a callback its ack
#: submits (after the run's own span ended).
_last_run: ContextVar[Any] = ContextVar("alsek_otel_last_run", default=None)


def _attributes(message: Message, operation: str) -> dict[str, Any]:
    return {
        "messaging.system": "alsek",
        "messaging.destination.name": message.queue,
        "messaging.operation.name": operation,
        "messaging.operation.type": operation,
        "messaging.message.id": message.uuid,
        "alsek.task.name": message.task_name,
        "alsek.retries": message.retries,
    }


def _where() -> tuple[int, int | None]:
    """This thread, and this asyncio task if any: where a context was attached."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return threading.get_ident(), id(task) if task is not None else None


class OpenTelemetryMiddleware(Middleware):
    """Traces submits and runs of a broker's messages (see the module's docstring).

    Args:
        tracer_provider: the provider to use in this process (default: the global one).
    """

    def __init__(self, tracer_provider: Any = None) -> None:
        self._provider = tracer_provider

    def __getstate__(self) -> dict[str, Any]:
        # A provider holds exporters, threads and locks: worker processes use their own global.
        return {"_provider": None}

    def _tracer(self) -> Any:
        return trace.get_tracer(_INSTRUMENTATION, tracer_provider=self._provider)

    # -- producing ---------------------------------------------------------------------------

    def before_submit(self, message: Message) -> None:
        """Open ``send {queue}`` and write its context into the message."""
        current = trace.get_current_span().get_span_context()
        parent = None if current.is_valid else _last_run.get()
        span = self._tracer().start_span(
            f"send {message.queue}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes=_attributes(message, "send"),
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span, parent))
        message.metadata = {**(message.metadata or {}), TRACE_METADATA_KEY: carrier}
        message.ephemeral_state[_SEND_SPAN] = span

    def after_submit(self, message: Message) -> None:
        """The broker took the message: ``send`` ends."""
        span = message.ephemeral_state.pop(_SEND_SPAN, None)
        if span is not None:
            span.end()

    # -- consuming ---------------------------------------------------------------------------

    def before_process(self, message: Message) -> None:
        """Open ``process {queue}``, child of the producer's context, current for the run."""
        parent = _producer_context(message)
        span = self._tracer().start_span(
            f"process {message.queue}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=_attributes(message, "process"),
        )
        run_context = trace.set_span_in_context(span, parent)
        message.ephemeral_state[_RUN_SPAN] = span
        message.ephemeral_state[_RUN_TOKEN] = (otel_context.attach(run_context), _where())
        _last_run.set(run_context)

    def after_process(self, message: Message, result: Any, exception: BaseException | None) -> None:
        """The run ended (or was stopped): ``process`` ends, with the error if any."""
        span = message.ephemeral_state.pop(_RUN_SPAN, None)
        token = message.ephemeral_state.pop(_RUN_TOKEN, None)
        if span is None:
            if exception is not None and not isinstance(exception, CONTROL_EXCEPTIONS):
                self._stand_in(message, exception)
            return
        _mark_error(span, exception)
        span.end()
        if token is not None and token[1] == _where():
            otel_context.detach(token[0])

    def _stand_in(self, message: Message, exception: BaseException) -> None:
        """A run that began in another process, which is gone (killed by a stop, or died:
        ``WorkerLostError``), ended here: its own span was never ended and never will be (it
        lived in that process's memory, unexported). Emit one in its place from here: the same
        name, parent and attributes, ``alsek.span.stand_in`` set, the error recorded."""
        started_ms = run_started_at_ms(message)
        span = self._tracer().start_span(
            f"process {message.queue}",
            context=_producer_context(message),
            kind=SpanKind.CONSUMER,
            attributes={**_attributes(message, "process"), STAND_IN_ATTRIBUTE: True},
            start_time=started_ms * 1_000_000 if started_ms is not None else None,
        )
        _mark_error(span, exception)
        span.end()


def _producer_context(message: Message) -> Any:
    """The trace context the submit wrote into ``message`` (``None``: none)."""
    carrier = (message.metadata or {}).get(TRACE_METADATA_KEY) or {}
    return propagate.extract(carrier) if isinstance(carrier, dict) else None


def _mark_error(span: Any, exception: BaseException | None) -> None:
    """Record ``exception`` on ``span`` as its error (``SkipMessage`` is none)."""
    if exception is None or isinstance(exception, SkipMessage):
        return
    span.set_attribute("error.type", type(exception).__qualname__)
    span.record_exception(exception)
    span.set_status(Status(StatusCode.ERROR, str(exception) or type(exception).__name__))


def instrument(broker: Any, tracer_provider: Any = None) -> OpenTelemetryMiddleware:
    """Trace ``broker``'s messages: add (and return) an ``OpenTelemetryMiddleware``."""
    middleware = OpenTelemetryMiddleware(tracer_provider)
    broker.add_middleware(middleware)
    return middleware
