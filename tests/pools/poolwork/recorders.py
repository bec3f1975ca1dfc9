"""Middleware for the pool tests: each records every hook call it gets in Redis (``probe``), so
tests can read, per message, which hooks ran, in which order, with what, and in which process.

``Recorder`` has plain hooks (sync pools, producers, and inline in the asyncio pool);
``AsyncRecorder`` the same as ``async def`` hooks; ``Broken`` raises in every hook; ``Skipper``
skips every message in ``before_process``. They hold no state, so they pickle to pool children.
"""

from __future__ import annotations

import json
import os
from typing import Any

from alsek.core.current import current_message
from alsek.core.message import Message
from alsek.core.middleware import Middleware
from alsek.exceptions import SkipMessage
from poolwork import probe

#: The list every recorder appends to.
CALLS = "middleware"


def _name(exception: BaseException | None) -> str | None:
    return None if exception is None else type(exception).__name__


def record(hook: str, message: Message | None, **detail: Any) -> str:
    """One call of ``hook`` as the recorders store it."""
    uuid = None if message is None else message.uuid
    return json.dumps({"hook": hook, "uuid": uuid, "pid": os.getpid(), **detail})


def calls() -> list[dict[str, Any]]:
    """Every recorded call, in order."""
    return [json.loads(item) for item in probe.client().lrange(probe.key(CALLS), 0, -1)]


class Recorder(Middleware):
    """Records each hook call with plain (blocking) Redis commands."""

    def _push(self, hook: str, message: Message | None, **detail: Any) -> None:
        probe.client().rpush(probe.key(CALLS), record(hook, message, **detail))

    def before_submit(self, message: Message) -> None:
        self._push("before_submit", message)

    def after_submit(self, message: Message) -> None:
        self._push("after_submit", message)

    def before_process(self, message: Message) -> None:
        running = current_message()
        self._push("before_process", message, current=running is not None and running is message)

    def after_process(self, message: Message, result: Any, exception: BaseException | None) -> None:
        self._push("after_process", message, result=result, exception=_name(exception))

    def after_ack(self, message: Message) -> None:
        self._push("after_ack", message)

    def after_retry(self, message: Message, exception: BaseException) -> None:
        self._push("after_retry", message, exception=_name(exception), retries=message.retries)

    def after_dead_letter(self, message: Message, exception: BaseException) -> None:
        self._push("after_dead_letter", message, exception=_name(exception))

    def after_revoke(self, message: Message) -> None:
        self._push("after_revoke", message)

    def worker_boot(self, pool: Any) -> None:
        self._push("worker_boot", None, pool=type(pool).__name__)

    def worker_shutdown(self, pool: Any) -> None:
        self._push("worker_shutdown", None, pool=type(pool).__name__)


class AsyncRecorder(Middleware):
    """Records the same calls with ``async def`` hooks (the asyncio pool's broker)."""

    async def _push(self, hook: str, message: Message | None, **detail: Any) -> None:
        await probe.async_client().rpush(probe.key(CALLS), record(hook, message, **detail))

    async def before_submit(self, message: Message) -> None:
        await self._push("before_submit", message)

    async def after_submit(self, message: Message) -> None:
        await self._push("after_submit", message)

    async def before_process(self, message: Message) -> None:
        running = current_message()
        await self._push(
            "before_process", message, current=running is not None and running is message
        )

    async def after_process(
        self, message: Message, result: Any, exception: BaseException | None
    ) -> None:
        await self._push("after_process", message, result=result, exception=_name(exception))

    async def after_ack(self, message: Message) -> None:
        await self._push("after_ack", message)

    async def after_retry(self, message: Message, exception: BaseException) -> None:
        await self._push(
            "after_retry", message, exception=_name(exception), retries=message.retries
        )

    async def after_dead_letter(self, message: Message, exception: BaseException) -> None:
        await self._push("after_dead_letter", message, exception=_name(exception))

    async def worker_boot(self, pool: Any) -> None:
        await self._push("worker_boot", None, pool=type(pool).__name__)

    async def worker_shutdown(self, pool: Any) -> None:
        await self._push("worker_shutdown", None, pool=type(pool).__name__)


class Broken(Middleware):
    """Every hook raises."""

    def _fail(self, *args: Any) -> None:
        raise RuntimeError("a middleware bug")

    before_submit = after_submit = before_process = after_ack = _fail
    after_retry = after_dead_letter = worker_boot = worker_shutdown = _fail

    def after_process(self, message: Message, result: Any, exception: BaseException | None) -> None:
        raise RuntimeError("a middleware bug")


class Skipper(Middleware):
    """Skips every message before it runs."""

    def before_process(self, message: Message) -> None:
        raise SkipMessage("skipped by middleware")
