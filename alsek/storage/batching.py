"""Combine the commands of concurrent callers on one client into pipelined round trips.

Why: a thousand waiters woken by one publish, or a hundred tasks finishing at once, would each
borrow a pooled connection for one command, and pay a round trip each (redis-py's pools also
hold only 100 connections by default, then ``MaxConnectionsError``). Instead, commands queue up
here: the first caller becomes the *leader* and sends everything queued meanwhile as one
pipeline, and again until the queue is empty. Once its own commands are answered it hands the
lead to the oldest waiting caller, so nobody serves others for long. Alone, a caller sends its
commands at once: no added latency.

Only idempotent commands go through a batcher (a batch interrupted by a cancellation is sent
again): reads, and alsek's broker scripts, which recognise a repeat of themselves.
``BatchCore`` holds the queue decisions; ``CommandBatcher`` (threads) and
``AsyncCommandBatcher`` (one per event loop) only wait and send, through a *sender* that turns
a list of items into their replies (plain commands by default).
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

Command = tuple[Any, ...]


class _Request:
    """Some commands of one caller, and their outcome once sent."""

    __slots__ = ("commands", "error", "event", "promoted", "replies")

    def __init__(self, commands: Sequence[Command], event: Any) -> None:
        self.commands = tuple(commands)
        self.event = event  # set when settled, or when promoted to leader
        self.replies: list[Any] | None = None
        self.error: BaseException | None = None
        self.promoted = False

    @property
    def settled(self) -> bool:
        return self.replies is not None or self.error is not None

    def outcome(self) -> list[Any]:
        if self.error is not None:
            raise self.error
        assert self.replies is not None
        return self.replies


class BatchCore:
    """The queue of reads waiting to be sent, and who leads. No I/O."""

    def __init__(self) -> None:
        self._pending: list[_Request] = []
        self._leading = False

    def _enqueue(self, request: _Request) -> bool:
        """Queue a request; ``True`` when its caller must lead (nobody else is sending)."""
        self._pending.append(request)
        lead = not self._leading
        self._leading = True
        return lead

    def _next_batch(self, own: _Request) -> list[_Request]:
        """What the leader sends next; empty when it stops leading (handed over or idle)."""
        if own.settled and self._pending:
            self._hand_over()
            return []
        batch, self._pending = self._pending, []
        if not batch:
            self._leading = False
        return batch

    def _requeue(self, batch: list[_Request], own: _Request) -> None:
        """An interrupted leader gives its batch (but its own request) back, and the lead."""
        self._pending[:0] = [request for request in batch if request is not own]
        self._hand_over()

    def _abandon(self, request: _Request) -> None:
        """A caller interrupted while waiting: drop its request, pass on a lead it was given."""
        if request in self._pending:
            self._pending.remove(request)
        if request.promoted:
            request.promoted = False
            self._hand_over()

    def _hand_over(self) -> None:
        if self._pending:
            successor = self._pending[0]
            successor.promoted = True
            successor.event.set()
        else:
            self._leading = False

    @staticmethod
    def _flatten(batch: list[_Request]) -> list[Command]:
        return [command for request in batch for command in request.commands]

    @staticmethod
    def _settle(batch: list[_Request], replies: list[Any]) -> None:
        start = 0
        for request in batch:
            mine = replies[start : start + len(request.commands)]
            start += len(request.commands)
            failed = next((reply for reply in mine if isinstance(reply, Exception)), None)
            if failed is not None:
                request.error = failed
            else:
                request.replies = mine
            request.event.set()

    @staticmethod
    def _fail(batch: list[_Request], error: BaseException) -> None:
        for request in batch:
            request.error = error
            request.event.set()


class CommandBatcher(BatchCore):
    """Batches the commands of the threads using one ``redis.Redis`` client."""

    def __init__(self, send: Callable[[Any, list[Any]], list[Any]] | None = None) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._send = send or _send

    def execute(self, client: Any, commands: Sequence[Any]) -> list[Any]:
        """Send ``commands`` (possibly with other callers'); their replies, in order."""
        request = _Request(commands, threading.Event())
        with self._lock:
            lead = self._enqueue(request)
        try:
            while True:
                if lead:
                    self._lead(client, request)
                request.event.wait()
                with self._lock:
                    if not request.promoted:
                        return request.outcome()
                    request.promoted, lead = False, True
                    request.event.clear()
        except BaseException:
            with self._lock:
                self._abandon(request)
            raise

    def _lead(self, client: Any, own: _Request) -> None:
        while True:
            with self._lock:
                batch = self._next_batch(own)
            if not batch:
                return
            try:
                replies = self._send(client, self._flatten(batch))
            except Exception as error:
                self._fail(batch, error)
            except BaseException:
                with self._lock:
                    self._requeue(batch, own)
                raise
            else:
                self._settle(batch, replies)


def _send(client: Any, commands: list[Command]) -> list[Any]:
    if len(commands) == 1:
        try:
            return [client.execute_command(*commands[0])]
        except ResponseError as error:  # Redis refused this command: its caller's error
            return [error]
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(pipe.execute(raise_on_error=False))


class AsyncCommandBatcher(BatchCore):
    """Batches the commands of the tasks using one ``redis.asyncio.Redis`` client on one loop."""

    def __init__(
        self, send: Callable[[Any, list[Any]], Awaitable[list[Any]]] | None = None
    ) -> None:
        super().__init__()
        self._send = send or _async_send

    async def execute(self, client: Any, commands: Sequence[Any]) -> list[Any]:
        """Send ``commands`` (possibly with other callers'); their replies, in order."""
        request = _Request(commands, asyncio.Event())
        lead = self._enqueue(request)
        try:
            while True:
                if lead:
                    await self._lead(client, request)
                await request.event.wait()
                if not request.promoted:
                    return request.outcome()
                request.promoted, lead = False, True
                request.event.clear()
        except BaseException:
            self._abandon(request)
            raise

    async def _lead(self, client: Any, own: _Request) -> None:
        while True:
            batch = self._next_batch(own)
            if not batch:
                return
            try:
                replies = await self._send(client, self._flatten(batch))
            except Exception as error:
                self._fail(batch, error)
            except BaseException:
                self._requeue(batch, own)
                raise
            else:
                self._settle(batch, replies)


async def _async_send(client: Any, commands: list[Command]) -> list[Any]:
    if len(commands) == 1:
        try:
            return [await client.execute_command(*commands[0])]
        except ResponseError as error:  # Redis refused this command: its caller's error
            return [error]
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(await pipe.execute(raise_on_error=False))


_BATCHERS: weakref.WeakKeyDictionary[Any, CommandBatcher] = weakref.WeakKeyDictionary()
_BATCHERS_LOCK = threading.Lock()
_ASYNC_BATCHERS: weakref.WeakKeyDictionary[
    Any, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncCommandBatcher]
] = weakref.WeakKeyDictionary()


def batcher_for(client: Any) -> CommandBatcher:
    """The batcher of a blocking client (one per client, dropped with it)."""
    with _BATCHERS_LOCK:
        batcher = _BATCHERS.get(client)
        if batcher is None:
            batcher = _BATCHERS[client] = CommandBatcher()
        return batcher


def async_batcher_for(client: Any) -> AsyncCommandBatcher:
    """The batcher of an asyncio client on the running event loop."""
    loop = asyncio.get_running_loop()
    per_loop = _ASYNC_BATCHERS.get(client)
    if per_loop is None:
        per_loop = _ASYNC_BATCHERS[client] = weakref.WeakKeyDictionary()
    batcher = per_loop.get(loop)
    if batcher is None:
        batcher = per_loop[loop] = AsyncCommandBatcher()
    return batcher


def _forget_batchers_after_fork() -> None:
    """A forked child must not inherit a batch led by one of its parent's threads."""
    global _BATCHERS, _BATCHERS_LOCK, _ASYNC_BATCHERS
    _BATCHERS = weakref.WeakKeyDictionary()
    _BATCHERS_LOCK = threading.Lock()
    _ASYNC_BATCHERS = weakref.WeakKeyDictionary()


os.register_at_fork(after_in_child=_forget_batchers_after_fork)
