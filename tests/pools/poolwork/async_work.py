"""The async twins of ``sync_work``'s task functions, and an ``AsyncTask`` with recording hooks.

Same names, same evidence (see ``probe``), recorded with the running loop's asyncio client; the
long tasks beat and sleep with ``await``, so a cancelled run stops at its next beat. There is no
``crash_process``: a task killing its process would kill an async pool with it (the async kind
skips that test body).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from alsek.core.broker import AsyncBroker
from alsek.core.current import current_message
from alsek.core.limits import AsyncConcurrentRateLimiter
from alsek.core.message import Message
from alsek.core.status import AsyncStatusTracker
from alsek.core.task import AsyncTask
from alsek.exceptions import RateLimitExceeded, Retry, SkipMessage
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.result import AsyncResultStore
from poolwork import probe
from poolwork.sync_work import BEAT_SECONDS, LIMITED_KEY, RAISABLE


async def started(message: Message) -> int:
    """Record a start; returns how many times this message has started (this one included)."""
    pipe = probe.async_client().pipeline(transaction=False)
    pipe.incr(probe.key("starts", message.uuid))
    pipe.rpush(probe.key("order"), message.uuid)
    pipe.rpush(probe.key("attempts", message.uuid), probe.attempt_record(message))
    count, _, _ = await pipe.execute()
    return int(count)


async def finished(message: Message) -> None:
    """Record a normal return."""
    await probe.async_client().incr(probe.key("done", message.uuid))


async def beat(message: Message) -> None:
    """Record that the task is still running."""
    await probe.async_client().set(probe.key("beat", message.uuid), probe.now_ms())


async def _run_for(seconds: float, message: Message) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await beat(message)
        await asyncio.sleep(BEAT_SECONDS)


# -- the task functions ------------------------------------------------------------------------


async def add(a: int, b: int, message: Message) -> int:
    """Return ``a + b``."""
    await started(message)
    await finished(message)
    return a + b


async def flaky(fail_times: int, message: Message) -> str:
    """Fail the first ``fail_times`` attempts, then succeed."""
    await started(message)
    if message.retries < fail_times:
        raise ConnectionError(f"attempt {message.retries + 1} fails, as planned")
    await finished(message)
    return f"succeeded on attempt {message.retries + 1}"


async def always_fail(message: Message) -> None:
    """Fail every attempt."""
    await started(message)
    raise ValueError(f"attempt {message.retries + 1} of a task that always fails")


async def sleepy(seconds: float, message: Message) -> float:
    """Run for ``seconds``, beating every few ms."""
    await started(message)
    await _run_for(seconds, message)
    await finished(message)
    return seconds


async def patient_io(seconds: float, message: Message) -> float:
    """Like ``sleepy``, but retries on ``TimeoutError`` as async network code does around
    ``asyncio.timeout`` (which raises ``TimeoutError``)."""
    await started(message)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            await beat(message)
            await asyncio.sleep(BEAT_SECONDS)
        except TimeoutError:
            continue
    await finished(message)
    return seconds


async def stubborn(seconds: float, message: Message) -> float:
    """Like ``sleepy``, but runs ``seconds`` more after its first cancel, as it does when
    ``asyncio.wait_for`` loses the cancel (Python 3.11)."""
    await started(message)
    try:
        await _run_for(seconds, message)
    except asyncio.CancelledError:
        await _run_for(seconds, message)
    await finished(message)
    return seconds


async def slow_first(seconds: float, message: Message) -> str:
    """Run for ``seconds`` on the first start only; later starts return at once."""
    if await started(message) == 1:
        await _run_for(seconds, message)
    await finished(message)
    return f"done after {message.retries} retries"


async def raise_this(name: str, message: Message) -> None:
    """Raise the exception named ``name`` in ``RAISABLE``."""
    await started(message)
    raise RAISABLE[name]


async def chain_start(x: int, message: Message) -> int:
    """First step of a chain: ``x + 1``."""
    await started(message)
    await finished(message)
    return x + 1


async def chain_double(message: Message) -> int:
    """Second step: the previous result times ten."""
    await started(message)
    await finished(message)
    return int(message.previous_result) * 10


async def chain_report(message: Message) -> str:
    """Last step: name the previous step and its result."""
    await started(message)
    await finished(message)
    return f"after {message.previous_message_uuid}: {message.previous_result}"


async def outcome_report(
    tag: str,
    message: Message,
    result: Any = None,
    exception_type: str | None = None,
    exception_message: str | None = None,
) -> str:
    """An ``on_success``/``on_failure`` handler: name what it was told."""
    await started(message)
    await finished(message)
    if exception_type is not None:
        return f"{tag}: {exception_type}: {exception_message}"
    return f"{tag}: {result}"


async def retry_later(times: int, delay: int, message: Message) -> str:
    """Raise ``Retry(delay=delay)`` on the first ``times`` starts, then succeed."""
    if await started(message) <= times:
        raise Retry(f"start {message.retries + 1} asks for a retry", delay=delay)
    await finished(message)
    return f"done after {message.retries} retries"


async def throttled(times: int, message: Message) -> str:
    """Raise ``RateLimitExceeded`` on the first ``times`` starts, then succeed."""
    if await started(message) <= times:
        raise RateLimitExceeded("no room yet")
    await finished(message)
    return f"done with retries={message.retries}"


async def skip_me(message: Message) -> None:
    """Skip the rest of the run (``finished`` is never recorded)."""
    await started(message)
    raise SkipMessage("nothing to do")


async def whoami() -> str:
    """The uuid of ``current_message()``: the function is not given its message."""
    message = current_message()
    assert message is not None, "no current message inside a run"
    await started(message)
    await finished(message)
    return message.uuid


async def limited(seconds: float, message: Message) -> int:
    """Hold the one slot of an ``AsyncConcurrentRateLimiter`` shared by every pool for
    ``seconds`` (or let ``RateLimitExceeded`` out); record how many were inside at once."""
    await started(message)
    backend = probe.async_backend()
    limiter = AsyncConcurrentRateLimiter(key=LIMITED_KEY, limit=1, backend=backend)
    async with limiter.acquire():
        conn = probe.async_client()
        await conn.rpush(probe.key("inside"), await conn.incr(probe.key("holding")))
        await _run_for(seconds, message)
        await conn.decr(probe.key("holding"))
    await finished(message)
    return message.retries


async def gauged(account: str, seconds: float, message: Message) -> int:
    """See ``sync_work.gauged``."""
    await started(message)
    conn = probe.async_client()
    for name in (account, "all"):
        await conn.rpush(probe.key("seen", name), await conn.incr(probe.key("gauge", name)))
    try:
        await _run_for(seconds if message.retries == 0 else BEAT_SECONDS, message)
    finally:
        for name in (account, "all"):
            await conn.decr(probe.key("gauge", name))
    await finished(message)
    return message.retries


# -- the task class ----------------------------------------------------------------------------


async def _record_hook(hook: str, message: Message, exception: BaseException | None) -> None:
    value = "-" if exception is None else type(exception).__name__
    await probe.async_client().set(probe.key("hook", hook, message.uuid), value)


class HookedTask(AsyncTask):
    """An ``AsyncTask`` whose failure hooks record which exception they saw."""

    async def on_failure(self, message: Message, exception: BaseException) -> None:
        """Record the exception that failed the message for good."""
        await _record_hook("on_failure", message, exception)

    async def on_revocation(
        self, message: Message, exception: BaseException | None, result: Any
    ) -> None:
        """Record that the revoked message stopped (or finished anyway)."""
        await _record_hook("on_revocation", message, exception)


TASK_CLASS = HookedTask


# -- building tasks and components -------------------------------------------------------------


def components(
    url: str, namespace: str
) -> tuple[AsyncBroker, AsyncStatusTracker, AsyncResultStore]:
    """An async broker, status tracker and result store on one backend (its client connects
    on first use, so build them before the loop that uses them, or inside it)."""
    backend = AsyncRedisBackend(url, namespace=namespace)
    return AsyncBroker(backend), AsyncStatusTracker(backend), AsyncResultStore(backend)


def build_task(function_name: str, broker: AsyncBroker, **options: Any) -> HookedTask:
    """A ``HookedTask`` running the coroutine function ``function_name`` of this module.

    ``options`` are ``AsyncTask``'s (with an async status tracker and result store).
    """
    return TASK_CLASS(globals()[function_name], broker=broker, **options)
