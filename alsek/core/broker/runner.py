"""Run broker scripts on a Redis client: EVALSHA, and a transparent reload on NOSCRIPT.

Operations of concurrent callers (threads finishing messages together, asyncio tasks acking in
the same loop turn) share pipelined round trips through a batcher: alone, a call goes out at
once; while one is in flight, the others queue and go together next. Every broker script
recognises a repeat of itself, so batching them is safe. Blocking commands (BLPOP) never share.

``SyncScriptRunner`` and ``AsyncScriptRunner`` differ only in I/O; what a call is and how
replies are sorted out lives in ``ScriptCall`` and ``_BaseRunner``.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from alsek.core.broker.scripts import Script, get_script
from alsek.storage.batching import AsyncCommandBatcher, CommandBatcher

#: Commands that block their connection: never sent with other callers' commands.
BLOCKING_COMMANDS = frozenset({"BLPOP", "BRPOP", "BLMOVE", "BZPOPMIN"})


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


def _is_blocking(calls: Sequence[Call]) -> bool:
    return any(isinstance(c, CommandCall) and c.args[0] in BLOCKING_COMMANDS for c in calls)


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
        self._batcher = CommandBatcher(send=self._send)
        self._pid = os.getpid()

    def run_many(self, calls: Sequence[Call]) -> list[Any]:
        """Run calls in one pipelined round trip, possibly with other callers'; replies in order."""
        if _is_blocking(calls):
            return self._raise_errors(self._send(self.conn, list(calls)))
        if self._pid != os.getpid():  # a forked child must not inherit a batch in flight
            self._batcher, self._pid = CommandBatcher(send=self._send), os.getpid()
        return self._batcher.execute(self.conn, calls)

    def _send(self, conn: Any, calls: list[Call]) -> list[Any]:
        """Send calls; each reply is a value or the error Redis answered for that call."""
        if len(calls) == 1:
            return [self._run_one(conn, calls[0])]
        replies = self._pipeline(conn, calls)
        missing = self._missing(calls, replies)
        if missing:
            for script in {_script_of(calls[i]) for i in missing}:
                conn.script_load(script.text)
            for i, reply in zip(missing, self._pipeline(conn, [calls[i] for i in missing])):
                replies[i] = reply
        return replies

    @staticmethod
    def _run_one(conn: Any, call: Call) -> Any:
        try:
            try:
                return conn.execute_command(*_direct_args(call))
            except NoScriptError:
                conn.script_load(_script_of(call).text)
                return conn.execute_command(*_direct_args(call))
        except ResponseError as error:  # Redis refused this call: its caller's error
            return error

    @staticmethod
    def _pipeline(conn: Any, calls: Sequence[Call]) -> list[Any]:
        pipe = conn.pipeline(transaction=False)
        for call in calls:
            _queue_call(pipe, call)
        return list(pipe.execute(raise_on_error=False))


class AsyncScriptRunner(_BaseRunner):
    """Runs scripts on a ``redis.asyncio.Redis`` client (a batcher per event loop)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._batchers: weakref.WeakKeyDictionary[Any, AsyncCommandBatcher] = (
            weakref.WeakKeyDictionary()
        )

    async def run_many(self, calls: Sequence[Call]) -> list[Any]:
        """Run calls in one pipelined round trip, possibly with other callers'; replies in order."""
        if _is_blocking(calls):
            return self._raise_errors(await self._send(self.conn, list(calls)))
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = AsyncCommandBatcher(send=self._send)
        return await batcher.execute(self.conn, calls)

    async def _send(self, conn: Any, calls: list[Call]) -> list[Any]:
        """Send calls; each reply is a value or the error Redis answered for that call."""
        if len(calls) == 1:
            return [await self._run_one(conn, calls[0])]
        replies = await self._pipeline(conn, calls)
        missing = self._missing(calls, replies)
        if missing:
            for script in {_script_of(calls[i]) for i in missing}:
                await conn.script_load(script.text)
            for i, reply in zip(missing, await self._pipeline(conn, [calls[i] for i in missing])):
                replies[i] = reply
        return replies

    @staticmethod
    async def _run_one(conn: Any, call: Call) -> Any:
        try:
            try:
                return await conn.execute_command(*_direct_args(call))
            except NoScriptError:
                await conn.script_load(_script_of(call).text)
                return await conn.execute_command(*_direct_args(call))
        except ResponseError as error:  # Redis refused this call: its caller's error
            return error

    @staticmethod
    async def _pipeline(conn: Any, calls: Sequence[Call]) -> list[Any]:
        pipe = conn.pipeline(transaction=False)
        for call in calls:
            _queue_call(pipe, call)
        return list(await pipe.execute(raise_on_error=False))
