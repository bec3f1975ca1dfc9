"""The sync task functions of the pool tests, and a task class whose hooks leave evidence.

Each function records its start and its normal return (see ``probe``), so tests can count runs
and completions per message whatever pool ran it. ``TASK_CLASS`` is the class tests build their
tasks with; an async twin of this module provides the same names.
"""

from __future__ import annotations

import os
import time
from typing import Any

from alsek.core.broker import Broker
from alsek.core.current import current_message
from alsek.core.limits import ConcurrentRateLimiter
from alsek.core.message import Message
from alsek.core.status import StatusTracker
from alsek.core.task import Task
from alsek.exceptions import RateLimitExceeded, Retry, SkipMessage
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.storage.result import ResultStore
from poolwork import probe

#: Heartbeat period of the long tasks (short sleeps, so an exception raised into the thread
#: lands at once).
BEAT_SECONDS = 0.01


class CustomBaseError(BaseException):
    """A ``BaseException`` that is neither ``Exception`` nor one of Python's own."""


#: What ``raise_this`` raises, by name.
RAISABLE: dict[str, BaseException] = {
    "ValueError": ValueError("a plain exception"),
    "SystemExit": SystemExit(3),
    "KeyboardInterrupt": KeyboardInterrupt(),
    "GeneratorExit": GeneratorExit(),
    "CustomBaseError": CustomBaseError("not an Exception"),
}


def started(message: Message) -> int:
    """Record a start; returns how many times this message has started (this one included)."""
    conn = probe.client()
    pipe = conn.pipeline(transaction=False)
    pipe.incr(probe.key("starts", message.uuid))
    pipe.rpush(probe.key("order"), message.uuid)
    pipe.rpush(probe.key("attempts", message.uuid), probe.attempt_record(message))
    count, _, _ = pipe.execute()
    return int(count)


def finished(message: Message) -> None:
    """Record a normal return."""
    probe.client().incr(probe.key("done", message.uuid))


def beat(message: Message) -> None:
    """Record that the task is still running."""
    probe.client().set(probe.key("beat", message.uuid), probe.now_ms())


def _run_for(seconds: float, message: Message) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        beat(message)
        time.sleep(BEAT_SECONDS)


# -- the task functions ------------------------------------------------------------------------


def add(a: int, b: int, message: Message) -> int:
    """Return ``a + b``."""
    started(message)
    finished(message)
    return a + b


def flaky(fail_times: int, message: Message) -> str:
    """Fail the first ``fail_times`` attempts, then succeed."""
    started(message)
    if message.retries < fail_times:
        raise ConnectionError(f"attempt {message.retries + 1} fails, as planned")
    finished(message)
    return f"succeeded on attempt {message.retries + 1}"


def always_fail(message: Message) -> None:
    """Fail every attempt."""
    started(message)
    raise ValueError(f"attempt {message.retries + 1} of a task that always fails")


def sleepy(seconds: float, message: Message) -> float:
    """Run for ``seconds``, beating every few ms."""
    started(message)
    _run_for(seconds, message)
    finished(message)
    return seconds


def patient_io(seconds: float, message: Message) -> float:
    """Like ``sleepy``, but retries on ``TimeoutError`` as network libraries do with
    ``socket.timeout`` (which is ``TimeoutError``)."""
    started(message)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            beat(message)
            time.sleep(BEAT_SECONDS)
        except TimeoutError:
            continue
    finished(message)
    return seconds


def stubborn(seconds: float, message: Message) -> float:
    """Like ``sleepy``, but runs ``seconds`` more after the first exception raised into it (a
    stop), as code that catches too much does."""
    started(message)
    try:
        _run_for(seconds, message)
    except BaseException:
        _run_for(seconds, message)
    finished(message)
    return seconds


def slow_first(seconds: float, message: Message) -> str:
    """Run for ``seconds`` on the first start only; later starts return at once."""
    if started(message) == 1:
        _run_for(seconds, message)
    finished(message)
    return f"done after {message.retries} retries"


def held(gate: str, message: Message) -> str:
    """Run, beating, until the test opens ``gate`` (``probe.key("gate", gate)`` exists)."""
    started(message)
    while not probe.client().exists(probe.key("gate", gate)):
        beat(message)
        time.sleep(BEAT_SECONDS)
    finished(message)
    return gate


def raise_this(name: str, message: Message) -> None:
    """Raise the exception named ``name`` in ``RAISABLE``."""
    started(message)
    raise RAISABLE[name]


def crash_process(message: Message) -> None:
    """Kill the process running the task (no clean-up, like a segfault) on the first start."""
    if started(message) == 1:
        os._exit(3)
    finished(message)


def chain_start(x: int, message: Message) -> int:
    """First step of a chain: ``x + 1``."""
    started(message)
    finished(message)
    return x + 1


def chain_double(message: Message) -> int:
    """Second step: the previous result times ten."""
    started(message)
    finished(message)
    return int(message.previous_result) * 10


def chain_report(message: Message) -> str:
    """Last step: name the previous step and its result."""
    started(message)
    finished(message)
    return f"after {message.previous_message_uuid}: {message.previous_result}"


def outcome_report(
    tag: str,
    message: Message,
    result: Any = None,
    exception_type: str | None = None,
    exception_message: str | None = None,
) -> str:
    """An ``on_success``/``on_failure`` handler: name what it was told."""
    started(message)
    finished(message)
    if exception_type is not None:
        return f"{tag}: {exception_type}: {exception_message}"
    return f"{tag}: {result}"


def retry_later(times: int, delay: int, message: Message) -> str:
    """Raise ``Retry(delay=delay)`` on the first ``times`` starts, then succeed."""
    if started(message) <= times:
        raise Retry(f"start {message.retries + 1} asks for a retry", delay=delay)
    finished(message)
    return f"done after {message.retries} retries"


def throttled(times: int, message: Message) -> str:
    """Raise ``RateLimitExceeded`` on the first ``times`` starts, then succeed."""
    if started(message) <= times:
        raise RateLimitExceeded("no room yet")
    finished(message)
    return f"done with retries={message.retries}"


def skip_me(message: Message) -> None:
    """Skip the rest of the run (``finished`` is never recorded)."""
    started(message)
    raise SkipMessage("nothing to do")


def whoami() -> str:
    """The uuid of ``current_message()``: the function is not given its message."""
    message = current_message()
    assert message is not None, "no current message inside a run"
    started(message)
    finished(message)
    return message.uuid


#: The concurrency limiter key the ``limited`` tasks share (one holder at a time).
LIMITED_KEY = "limited"


def limited(seconds: float, message: Message) -> int:
    """Hold the one slot of a ``ConcurrentRateLimiter`` shared by every pool for ``seconds``
    (or let ``RateLimitExceeded`` out); record how many were inside at once."""
    started(message)
    limiter = ConcurrentRateLimiter(key=LIMITED_KEY, limit=1, backend=probe.backend())
    with limiter.acquire():
        conn = probe.client()
        conn.rpush(probe.key("inside"), conn.incr(probe.key("holding")))
        _run_for(seconds, message)
        conn.decr(probe.key("holding"))
    finished(message)
    return message.retries


def gauged(account: str, seconds: float, message: Message) -> int:
    """Run ``seconds`` (a retry: briefly) while counted in ``gauge:<account>`` and ``gauge:all``
    (INCR before, DECR after), recording the counts seen at each start in ``seen:<account>`` and
    ``seen:all``: their maximum is how many ran at once."""
    started(message)
    conn = probe.client()
    for name in (account, "all"):
        conn.rpush(probe.key("seen", name), conn.incr(probe.key("gauge", name)))
    try:
        _run_for(seconds if message.retries == 0 else BEAT_SECONDS, message)
    finally:
        for name in (account, "all"):
            conn.decr(probe.key("gauge", name))
    finished(message)
    return message.retries


def retry_connection_errors(retries: int, exception: BaseException) -> bool:
    """A ``retry_when``: retry connection errors (up to 5 retries), nothing else."""
    return isinstance(exception, ConnectionError) and retries < 5


# -- the task class ----------------------------------------------------------------------------


def _record_hook(hook: str, message: Message, exception: BaseException | None) -> None:
    value = "-" if exception is None else type(exception).__name__
    probe.client().set(probe.key("hook", hook, message.uuid), value)


class HookedTask(Task):
    """A ``Task`` whose failure hooks record which exception they saw."""

    def on_failure(self, message: Message, exception: BaseException) -> None:
        """Record the exception that failed the message for good."""
        _record_hook("on_failure", message, exception)

    def on_revocation(self, message: Message, exception: BaseException | None, result: Any) -> None:
        """Record that the revoked message stopped (or finished anyway)."""
        _record_hook("on_revocation", message, exception)


TASK_CLASS = HookedTask


# -- building tasks and components -------------------------------------------------------------


def components(url: str, namespace: str) -> tuple[Broker, StatusTracker, ResultStore]:
    """A broker, status tracker and result store of this module's kind on one backend."""
    backend = RedisBackend(url, namespace=namespace)
    return Broker(backend), StatusTracker(backend), ResultStore(backend)


def build_task(function_name: str, broker: Broker, **options: Any) -> HookedTask:
    """A ``HookedTask`` running the function ``function_name`` of this module.

    ``options`` are ``Task``'s (``queue``, ``mechanism``, ``max_retries``, ``backoff``,
    ``timeout``, ``status_tracker``, ``result_store``, ...).
    """
    return TASK_CLASS(globals()[function_name], broker=broker, **options)
