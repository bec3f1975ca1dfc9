"""Run broker scripts on a Redis client: EVALSHA, and a transparent reload on NOSCRIPT.

``SyncScriptRunner`` and ``AsyncScriptRunner`` differ only in I/O; what a call is and how
pipeline replies are sorted out lives in ``ScriptCall`` and ``_BaseRunner``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoScriptError

from alsek.core.broker.scripts import Script, get_script


@dataclass(frozen=True)
class ScriptCall:
    """One script invocation: ``route_key`` picks the Cluster slot; ``args`` is ARGV."""

    name: str
    route_key: str
    args: Sequence[str | int | float] = field(default_factory=tuple)

    @property
    def script(self) -> Script:
        """The script this call runs."""
        return get_script(self.name)


@dataclass(frozen=True)
class CommandCall:
    """One plain Redis command, e.g. ``CommandCall(("EXISTS", key))``."""

    args: tuple[str | int | float, ...]


Call = ScriptCall | CommandCall


def _queue_call(pipe: Any, call: Call) -> None:
    if isinstance(call, ScriptCall):
        pipe.evalsha(call.script.sha, 1, call.route_key, *call.args)
    else:
        pipe.execute_command(*call.args)


def _direct_args(call: Call) -> tuple[Any, ...]:
    if isinstance(call, ScriptCall):
        return ("EVALSHA", call.script.sha, 1, call.route_key, *call.args)
    return call.args


def _script_of(call: Call) -> Script:
    assert isinstance(call, ScriptCall)
    return call.script


class _BaseRunner:
    @staticmethod
    def _missing(calls: Sequence[Call], replies: list[Any]) -> list[int]:
        """Indexes of calls that Redis refused because their script is not loaded."""
        return [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]

    @staticmethod
    def _raise_errors(replies: list[Any]) -> list[Any]:
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies


class SyncScriptRunner(_BaseRunner):
    """Runs scripts on a ``redis.Redis`` client."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def run_many(self, calls: Sequence[Call]) -> list[Any]:
        """Run calls in one pipelined round trip (not a transaction); replies in order."""
        if len(calls) == 1:
            return [self._run_one(calls[0])]
        replies = self._pipeline(calls)
        missing = self._missing(calls, replies)
        if missing:
            for script in {_script_of(calls[i]) for i in missing}:
                self.conn.script_load(script.text)
            for i, reply in zip(missing, self._pipeline([calls[i] for i in missing])):
                replies[i] = reply
        return self._raise_errors(replies)

    def _run_one(self, call: Call) -> Any:
        try:
            return self.conn.execute_command(*_direct_args(call))
        except NoScriptError:
            self.conn.script_load(_script_of(call).text)
            return self.conn.execute_command(*_direct_args(call))

    def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        pipe = self.conn.pipeline(transaction=False)
        for call in calls:
            _queue_call(pipe, call)
        return list(pipe.execute(raise_on_error=False))


class AsyncScriptRunner(_BaseRunner):
    """Runs scripts on a ``redis.asyncio.Redis`` client."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def run_many(self, calls: Sequence[Call]) -> list[Any]:
        """Run calls in one pipelined round trip (not a transaction); replies in order."""
        if len(calls) == 1:
            return [await self._run_one(calls[0])]
        replies = await self._pipeline(calls)
        missing = self._missing(calls, replies)
        if missing:
            for script in {_script_of(calls[i]) for i in missing}:
                await self.conn.script_load(script.text)
            for i, reply in zip(missing, await self._pipeline([calls[i] for i in missing])):
                replies[i] = reply
        return self._raise_errors(replies)

    async def _run_one(self, call: Call) -> Any:
        try:
            return await self.conn.execute_command(*_direct_args(call))
        except NoScriptError:
            await self.conn.script_load(_script_of(call).text)
            return await self.conn.execute_command(*_direct_args(call))

    async def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        pipe = self.conn.pipeline(transaction=False)
        for call in calls:
            _queue_call(pipe, call)
        return list(await pipe.execute(raise_on_error=False))
