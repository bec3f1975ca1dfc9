"""Combine the requests of concurrent callers on one client into pipelined round trips.

Why: a thousand waiters woken by one publish, or a hundred tasks finishing at once, would each
borrow a pooled connection for one command, and pay a round trip each (redis-py's pools also
hold only 100 connections by default, then ``MaxConnectionsError``). Instead, requests queue up
here: the first caller becomes the *leader* and sends everything queued meanwhile as one
pipeline, and again until the queue is empty. Once its own requests are answered it hands the
lead to the oldest waiting caller, so nobody serves others for long. Alone (nobody sending), a
caller sends its requests at once, without queueing: no added latency, and no batching work.

Only idempotent requests go through a batcher (a batch interrupted by a cancellation is sent
again): reads, and alsek's broker scripts, which recognise a repeat of themselves. Durable
writes (that wait for replicas) have batchers of their own, one per replication setting, so a
batch either waits for its replicas or not; when they fall short, every caller whose writes the
batch carried is failed with ``ReplicationShortfallError`` and sends its own again.
``BatchCore`` holds the queue decisions; ``CommandBatcher`` (threads) and
``AsyncCommandBatcher`` (one per event loop) only wait and send (through ``sending``).

A thread whose round trips others wait for (a sync pool's loop: idle slots wait for its claim)
can opt out with ``unbatched()``: its requests then go out at once on a connection of
their own, never queued behind another thread's batch in flight. ``async_unbatched()`` does the
same for the asyncio task it is entered in (an asyncio pool's claims).
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from alsek.core.steps.ops import Replication, Request
from alsek.core.steps.sending import async_send, send


class _Caller:
    """The requests of one caller, and their outcome once sent."""

    __slots__ = ("error", "event", "promoted", "replies", "requests")

    def __init__(self, requests: Sequence[Request], event: Any) -> None:
        self.requests = tuple(requests)
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
    """The queue of requests waiting to be sent, and who leads. No I/O.

    ``replicas``: what every batch of this batcher waits for (``None``: nothing).
    """

    def __init__(self, replicas: Replication | None = None) -> None:
        self._pending: list[_Caller] = []
        self._leading = False
        self.replicas = replicas

    def _lead_alone(self) -> bool:
        """Take the lead at once when nobody is sending (then nobody is waiting either): a lone
        caller sends its requests without queueing (no event, no batch to assemble)."""
        alone = not self._leading
        self._leading = True
        return alone

    def _enqueue(self, caller: _Caller) -> bool:
        """Queue a request; ``True`` when its caller must lead (nobody else is sending)."""
        self._pending.append(caller)
        lead = not self._leading
        self._leading = True
        return lead

    def _next_batch(self, own: _Caller) -> list[_Caller]:
        """What the leader sends next; empty when it stops leading (handed over or idle)."""
        if own.settled and self._pending:
            self._hand_over()
            return []
        batch, self._pending = self._pending, []
        if not batch:
            self._leading = False
        return batch

    def _requeue(self, batch: list[_Caller], own: _Caller) -> None:
        """An interrupted leader gives its batch (but its own request) back, and the lead."""
        self._pending[:0] = [caller for caller in batch if caller is not own]
        self._hand_over()

    def _abandon(self, caller: _Caller) -> None:
        """A caller interrupted while waiting: drop its request, pass on a lead it was given."""
        if caller in self._pending:
            self._pending.remove(caller)
        if caller.promoted:
            caller.promoted = False
            self._hand_over()

    def _hand_over(self) -> None:
        if self._pending:
            successor = self._pending[0]
            successor.promoted = True
            successor.event.set()
        else:
            self._leading = False

    @staticmethod
    def _own_replies(replies: list[Any]) -> list[Any]:
        """A lone caller's replies, or the first error among them, raised (as ``_settle``)."""
        failed = next((reply for reply in replies if isinstance(reply, Exception)), None)
        if failed is not None:
            raise failed
        return replies

    @staticmethod
    def _flatten(batch: list[_Caller]) -> list[Request]:
        return [request for caller in batch for request in caller.requests]

    @staticmethod
    def _settle(batch: list[_Caller], replies: list[Any]) -> None:
        start = 0
        for caller in batch:
            mine = replies[start : start + len(caller.requests)]
            start += len(caller.requests)
            failed = next((reply for reply in mine if isinstance(reply, Exception)), None)
            if failed is not None:
                caller.error = failed
            else:
                caller.replies = mine
            caller.event.set()

    @staticmethod
    def _fail(batch: list[_Caller], error: BaseException) -> None:
        for caller in batch:
            caller.error = error
            caller.event.set()


_unbatched = threading.local()


@contextmanager
def unbatched() -> Iterator[None]:
    """Within it, the calling thread's requests skip the batch queue (see the module's
    docstring): a pool's loop in the backlog spent about a tenth of its time queued behind
    acks."""
    before = getattr(_unbatched, "on", False)
    _unbatched.on = True
    try:
        yield
    finally:
        _unbatched.on = before


_async_unbatched: ContextVar[bool] = ContextVar("alsek_async_unbatched", default=False)


@contextmanager
def async_unbatched() -> Iterator[None]:
    """Within it, the requests of the calling asyncio task (not of the tasks it starts meanwhile,
    which run in contexts of their own) skip the batch queue, as ``unbatched`` does for a
    thread."""
    token = _async_unbatched.set(True)
    try:
        yield
    finally:
        _async_unbatched.reset(token)


class CommandBatcher(BatchCore):
    """Batches the requests of the threads using one ``redis.Redis`` client."""

    def __init__(self, replicas: Replication | None = None) -> None:
        super().__init__(replicas)
        self._lock = threading.Lock()

    def execute(self, client: Any, requests: Sequence[Request]) -> list[Any]:
        """Send ``requests`` (possibly with other callers'); their replies, in order."""
        if getattr(_unbatched, "on", False):
            return self._own_replies(send(client, requests, self.replicas))
        with self._lock:
            alone = self._lead_alone()
        if alone:
            return self._send_alone(client, requests)
        caller = _Caller(requests, threading.Event())
        with self._lock:
            lead = self._enqueue(caller)
        try:
            while True:
                if lead:
                    self._lead(client, caller)
                caller.event.wait()
                with self._lock:
                    if not caller.promoted:
                        return caller.outcome()
                    caller.promoted, lead = False, True
                    caller.event.clear()
        except BaseException:
            with self._lock:
                self._abandon(caller)
            raise

    def _send_alone(self, client: Any, requests: Sequence[Request]) -> list[Any]:
        """Send a lone caller's ``requests``, then hand the lead to whoever queued meanwhile."""
        try:
            replies = send(client, requests, self.replicas)
        finally:
            with self._lock:
                self._hand_over()
        return self._own_replies(replies)

    def _lead(self, client: Any, own: _Caller) -> None:
        while True:
            with self._lock:
                batch = self._next_batch(own)
            if not batch:
                return
            try:
                replies = send(client, self._flatten(batch), self.replicas)
            except Exception as error:
                self._fail(batch, error)
            except BaseException:
                with self._lock:
                    self._requeue(batch, own)
                raise
            else:
                self._settle(batch, replies)


class AsyncCommandBatcher(BatchCore):
    """Batches the requests of the tasks using one ``redis.asyncio.Redis`` client on one loop."""

    async def execute(self, client: Any, requests: Sequence[Request]) -> list[Any]:
        """Send ``requests`` (possibly with other callers'); their replies, in order."""
        if _async_unbatched.get():
            return self._own_replies(await async_send(client, requests, self.replicas))
        if self._lead_alone():
            return await self._send_alone(client, requests)
        caller = _Caller(requests, asyncio.Event())
        lead = self._enqueue(caller)
        try:
            while True:
                if lead:
                    await self._lead(client, caller)
                await caller.event.wait()
                if not caller.promoted:
                    return caller.outcome()
                caller.promoted, lead = False, True
                caller.event.clear()
        except BaseException:
            self._abandon(caller)
            raise

    async def _send_alone(self, client: Any, requests: Sequence[Request]) -> list[Any]:
        """Send a lone caller's ``requests``, then hand the lead to whoever queued meanwhile."""
        try:
            replies = await async_send(client, requests, self.replicas)
        finally:
            self._hand_over()
        return self._own_replies(replies)

    async def _lead(self, client: Any, own: _Caller) -> None:
        while True:
            batch = self._next_batch(own)
            if not batch:
                return
            try:
                replies = await async_send(client, self._flatten(batch), self.replicas)
            except Exception as error:
                self._fail(batch, error)
            except BaseException:
                self._requeue(batch, own)
                raise
            else:
                self._settle(batch, replies)


_BATCHERS: weakref.WeakKeyDictionary[Any, dict[Replication | None, CommandBatcher]] = (
    weakref.WeakKeyDictionary()
)
_BATCHERS_LOCK = threading.Lock()
_ASYNC_BATCHERS: weakref.WeakKeyDictionary[
    Any,
    weakref.WeakKeyDictionary[
        asyncio.AbstractEventLoop, dict[Replication | None, AsyncCommandBatcher]
    ],
] = weakref.WeakKeyDictionary()


def batcher_for(client: Any, replicas: Replication | None = None) -> CommandBatcher:
    """The batcher of a blocking client for writes waiting for ``replicas`` (one per client
    and setting, dropped with the client)."""
    with _BATCHERS_LOCK:
        batchers = _BATCHERS.get(client)
        if batchers is None:
            batchers = _BATCHERS[client] = {}
        batcher = batchers.get(replicas)
        if batcher is None:
            batcher = batchers[replicas] = CommandBatcher(replicas)
        return batcher


def async_batcher_for(client: Any, replicas: Replication | None = None) -> AsyncCommandBatcher:
    """The batcher of an asyncio client on the running event loop, for ``replicas``."""
    loop = asyncio.get_running_loop()
    per_loop = _ASYNC_BATCHERS.get(client)
    if per_loop is None:
        per_loop = _ASYNC_BATCHERS[client] = weakref.WeakKeyDictionary()
    batchers = per_loop.get(loop)
    if batchers is None:
        batchers = per_loop[loop] = {}
    batcher = batchers.get(replicas)
    if batcher is None:
        batcher = batchers[replicas] = AsyncCommandBatcher(replicas)
    return batcher


def _forget_batchers_after_fork() -> None:
    """A forked child must not inherit a batch led by one of its parent's threads."""
    global _BATCHERS, _BATCHERS_LOCK, _ASYNC_BATCHERS
    _BATCHERS = weakref.WeakKeyDictionary()
    _BATCHERS_LOCK = threading.Lock()
    _ASYNC_BATCHERS = weakref.WeakKeyDictionary()


os.register_at_fork(after_in_child=_forget_batchers_after_fork)
