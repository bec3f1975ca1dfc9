"""One subscriber connection per Redis client, shared by every waiter of the process.

Why: status listeners, ``wait_for``, ``ResultStore.get(timeout=...)`` and ``ResultPool`` all wait
for a publish. A subscriber connection each would cost one Redis connection per waiter (a thousand
waiters, a thousand connections). A hub holds one subscriber connection per client (per client
*and event loop* for asyncio) and routes each published message to the subscriptions that asked
for its channel. It exists only while it has subscriptions: the reader stops and the connection
closes when the last one leaves.

Finding a snapshot's place in the stream: a waiter subscribes first, then reads the current state
with a script that also publishes a *sync token* on the channel (see ``waiting.snapshot_steps``).
Redis delivers publishes to a subscriber in the order it ran them, so everything received before
the token is already part of the snapshot and everything after it is newer: no clocks compared, no
update lost or seen twice. Only the subscription that asked for a token receives it.

Reconnection: redis-py subscribes again after a dropped connection, but whatever was published in
between is lost, so every subscription of the channel receives ``RESYNC`` and reads its state
again. ``HubCore`` holds all of these decisions; ``SubscriptionHub`` (a reader thread) and
``AsyncSubscriptionHub`` (a reader task) only move bytes.

On a cluster with sharded pub/sub (``publishing``) the hub uses SSUBSCRIBE through ``shards``:
one connection per node that owns a subscribed channel, a channel moved to its new owner after a
failover or a slot migration, which the hub sees as a re-subscription (so ``RESYNC`` again).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from alsek.core.steps.publishing import async_uses_sharded_pubsub, uses_sharded_pubsub
from alsek.core.steps.shards import AsyncShardedSubscriber, ShardedSubscriber

log = logging.getLogger(__name__)

#: Published payloads starting with this are sync tokens, never data (JSON payloads start with
#: ``{``, ``[``, a digit or a quote; base64 payloads never contain ``~``).
SYNC_TOKEN_PREFIX = "~sync:"
#: How long a subscriber waits for Redis to confirm its SUBSCRIBE (or deliver its sync token).
SUBSCRIBE_TIMEOUT_SECONDS = 10.0
#: Longest blocking read of a hub's reader, so that it notices when it has become idle.
READ_TIMEOUT_SECONDS = 1.0
#: Pause of a reader after a connection error, before it reads (and reconnects) again.
RECONNECT_PAUSE_SECONDS = 0.5
#: Entry types of sharded pub/sub, as the classic ones they mean.
_SHARDED_TYPES = {"ssubscribe": "subscribe", "sunsubscribe": "unsubscribe", "smessage": "message"}


@dataclass(frozen=True)
class Published:
    """A message published on one of the subscription's channels."""

    channel: str
    data: str


@dataclass(frozen=True)
class SyncToken:
    """The sync token this subscription published has arrived."""

    token: str


class _Resync:
    """The subscriber connection was re-established: publishes may have been missed."""

    def __repr__(self) -> str:
        return "RESYNC"


RESYNC = _Resync()


@dataclass(frozen=True)
class HubFailure:
    """The hub stopped on an unexpected error; receiving this raises it."""

    error: BaseException


Item = Published | SyncToken | _Resync | HubFailure


class _Channel:
    """What the hub knows about one channel."""

    __slots__ = ("pending", "subscribed", "subscriptions")

    def __init__(self) -> None:
        self.subscriptions: set[BaseSubscription] = set()
        self.subscribed = False  # SUBSCRIBE sent, not followed by UNSUBSCRIBE
        self.pending = 0  # SUBSCRIBE confirmations still to come

    @property
    def ready(self) -> bool:
        return self.subscribed and self.pending == 0


class BaseSubscription(ABC):
    """Interest in some channels; the hub pushes ``Item``s to it, in the order Redis sent them."""

    def __init__(self, hub: HubCore, channels: Iterable[str]) -> None:
        self.hub = hub
        self.channels = tuple(dict.fromkeys(channels))
        self.unconfirmed = set(self.channels)
        self.closed = False

    @abstractmethod
    def push(self, item: Item) -> None:
        """Queue an item for the waiter (called by the hub's reader)."""

    @abstractmethod
    def mark_ready(self) -> None:
        """Every channel is confirmed: publishes on them will reach this subscription."""

    def new_token(self) -> str:
        """A fresh sync token; only this subscription will receive it."""
        return self.hub.expect_token(self)


class HubCore:
    """Who listens to what, and where each entry read from the connection goes. No I/O."""

    def __init__(self, sharded: bool = False) -> None:
        self._channels: dict[str, _Channel] = {}
        self._tokens: dict[str, BaseSubscription] = {}
        self._members = 0
        self._stray: list[str] = []
        self.retired = False  # the connection is closed (or closing): send nothing more
        self.sharded = sharded  # SSUBSCRIBE rather than SUBSCRIBE (see ``publishing``)

    def command(self, name: str) -> str:
        """The redis-py PubSub method for ``name`` (``subscribe``/``unsubscribe``)."""
        return f"s{name}" if self.sharded else name

    @staticmethod
    def entry_of(entry: dict[str, Any] | None) -> dict[str, Any] | None:
        """``entry``, unless it reports a failure of a sharded subscriber: then raise it."""
        if entry is not None and entry.get("type") == "error":
            raise entry["error"]
        return entry

    def idle(self) -> bool:
        """No subscription left: the hub may close its connection (which drops the rest)."""
        return self._members == 0

    def take_stray(self) -> list[str]:
        """Channels Redis re-subscribed (after a reconnection) that nobody wants any more."""
        stray, self._stray = self._stray, []
        return stray

    def join(self, subscription: BaseSubscription) -> list[str]:
        """Register a subscription; return the channels that need a SUBSCRIBE."""
        self._members += 1
        to_subscribe = []
        for name in subscription.channels:
            channel = self._channels.setdefault(name, _Channel())
            channel.subscriptions.add(subscription)
            if not channel.subscribed:
                channel.subscribed = True
                channel.pending += 1
                to_subscribe.append(name)
            elif channel.ready:
                subscription.unconfirmed.discard(name)
        if not subscription.unconfirmed:
            subscription.mark_ready()
        return to_subscribe

    def leave(self, subscription: BaseSubscription) -> list[str]:
        """Forget a subscription; return the channels that need an UNSUBSCRIBE."""
        if subscription.closed:
            return []
        subscription.closed = True
        self._members -= 1
        to_unsubscribe = []
        for name in subscription.channels:
            channel = self._channels.get(name)
            if channel is None:
                continue
            channel.subscriptions.discard(subscription)
            if not channel.subscriptions and channel.subscribed:
                channel.subscribed = False
                to_unsubscribe.append(name)
        for token in [t for t, owner in self._tokens.items() if owner is subscription]:
            del self._tokens[token]
        return to_unsubscribe

    def expect_token(self, subscription: BaseSubscription) -> str:
        """Register a sync token for ``subscription``."""
        token = uuid.uuid4().hex
        self._tokens[token] = subscription
        return token

    def route(self, entry: dict[str, Any]) -> list[tuple[BaseSubscription, Item]]:
        """Decide what an entry read from the subscriber connection means, and for whom."""
        kind, name = entry.get("type"), entry.get("channel")
        kind = _SHARDED_TYPES.get(str(kind), kind)
        if not isinstance(name, str):  # not about a channel (a PONG, say)
            return []
        channel = self._channels.get(name)
        if channel is None:
            if kind == "subscribe":  # re-subscribed after a reconnection, wanted by nobody
                self._stray.append(name)
            return []
        if kind == "subscribe":
            return self._confirmed(name, channel)
        if kind == "unsubscribe":
            if not channel.subscribed and channel.pending == 0:
                del self._channels[name]
            return []
        if kind != "message":
            return []
        data = str(entry.get("data"))
        if data.startswith(SYNC_TOKEN_PREFIX):
            token = data[len(SYNC_TOKEN_PREFIX) :]
            owner = self._tokens.pop(token, None)
            return [] if owner is None else [(owner, SyncToken(token))]
        published = Published(name, data)
        return [(subscription, published) for subscription in channel.subscriptions]

    def _confirmed(self, name: str, channel: _Channel) -> list[tuple[BaseSubscription, Item]]:
        if channel.pending == 0:
            # Not asked for: redis-py subscribed again after a reconnection.
            if not channel.subscribed:
                self._stray.append(name)
            return [(subscription, RESYNC) for subscription in channel.subscriptions]
        channel.pending -= 1
        if channel.ready:
            for subscription in channel.subscriptions:
                subscription.unconfirmed.discard(name)
                if not subscription.unconfirmed:
                    subscription.mark_ready()
        return []

    def everyone(self, item: Item) -> list[tuple[BaseSubscription, Item]]:
        """The same item for every subscription (after a failure)."""
        subscriptions = {s for channel in self._channels.values() for s in channel.subscriptions}
        return [(subscription, item) for subscription in subscriptions]


# -- threads -----------------------------------------------------------------------------------


class Subscription(BaseSubscription):
    """A subscription on a thread hub: items wait in a thread-safe queue."""

    hub: SubscriptionHub

    def __init__(self, hub: SubscriptionHub, channels: Iterable[str]) -> None:
        super().__init__(hub, channels)
        self._items: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._ready = threading.Event()

    def push(self, item: Item) -> None:
        self._items.put(item)

    def mark_ready(self) -> None:
        self._ready.set()

    def new_token(self) -> str:
        with self.hub.lock:
            return super().new_token()

    def wait_ready(self, timeout: float) -> bool:
        """Block until Redis confirmed every channel; ``False`` on timeout."""
        return self._ready.wait(timeout)

    def receive(self, timeout: float | None) -> Item | None:
        """The next item, or ``None`` after ``timeout`` seconds (``None``: no limit)."""
        try:
            item = self._items.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, HubFailure):
            raise item.error
        return item

    def close(self) -> None:
        """Stop receiving; the hub unsubscribes channels nobody else wants."""
        self.hub.close(self)


_HUBS: dict[int, SubscriptionHub] = {}
_HUBS_LOCK = threading.Lock()


class SubscriptionHub(HubCore):
    """The thread hub of one ``redis.Redis`` client: a reader thread routes what it reads.

    Other threads send SUBSCRIBE/UNSUBSCRIBE while the reader reads (redis-py serialises the
    writes); the reader closes the connection itself once the hub has been idle for a read.
    """

    def __init__(self, client: Any) -> None:
        super().__init__(sharded=uses_sharded_pubsub(client))
        self.client = client
        self.lock = threading.Lock()
        self._pubsub: Any = ShardedSubscriber(client) if self.sharded else client.pubsub()
        self._reader: threading.Thread | None = None

    def open(self, channels: Iterable[str]) -> Subscription:
        """Register a subscription and send the SUBSCRIBE it needs (call under ``_HUBS_LOCK``)."""
        with self.lock:
            subscription = Subscription(self, channels)
            try:
                self._send("subscribe", self.join(subscription))
            except BaseException:
                self.leave(subscription)
                raise
            if self._reader is None:
                self._reader = threading.Thread(
                    target=self._read, name="alsek-pubsub-hub", daemon=True
                )
                self._reader.start()
        return subscription

    def close(self, subscription: Subscription) -> None:
        """Unregister a subscription."""
        with self.lock:
            self._send("unsubscribe", self.leave(subscription))

    def _send(self, command: str, channels: list[str]) -> None:
        if not channels or self.retired:
            return
        try:
            getattr(self._pubsub, self.command(command))(*channels)
        except (RedisConnectionError, RedisTimeoutError):
            if command == "subscribe":
                raise
            log.debug("Could not unsubscribe %s: the connection is down.", channels)

    def _read(self) -> None:
        while not self._retire_if_idle():
            try:
                entry = self._next_entry()
            except (RedisConnectionError, RedisTimeoutError) as error:
                log.warning("Pub/sub connection lost (%s); reconnecting.", error)
                time.sleep(RECONNECT_PAUSE_SECONDS)
                continue
            except Exception as error:  # an unexpected failure must reach every waiter
                log.exception("The pub/sub hub stopped.")
                self._retire(HubFailure(error))
                return
            if entry:
                with self.lock:
                    deliveries = self.route(entry)
                    self._send("unsubscribe", self.take_stray())
                for subscription, item in deliveries:
                    subscription.push(item)

    def _next_entry(self) -> dict[str, Any] | None:
        if self.sharded:
            return self.entry_of(self._pubsub.get_sharded_message(timeout=READ_TIMEOUT_SECONDS))
        entry: dict[str, Any] | None = self._pubsub.get_message(timeout=READ_TIMEOUT_SECONDS)
        return entry

    def _retire_if_idle(self) -> bool:
        if not self.idle():
            return False
        return self._retire(None)

    def _retire(self, failure: HubFailure | None) -> bool:
        with _HUBS_LOCK, self.lock:
            if failure is None and not self.idle():
                return False  # someone subscribed meanwhile
            if _HUBS.get(id(self.client)) is self:
                del _HUBS[id(self.client)]
            deliveries = [] if failure is None else self.everyone(failure)
            self.retired = True
        for subscription, item in deliveries:
            subscription.push(item)
        self._pubsub.close()
        return True


def subscribe(client: Any, channels: Iterable[str]) -> Subscription:
    """Subscribe to ``channels`` through the hub of ``client``; returns once Redis confirmed.

    Raises:
        TimeoutError: Redis did not confirm within ``SUBSCRIBE_TIMEOUT_SECONDS``.
    """
    with _HUBS_LOCK:
        hub = _HUBS.get(id(client))
        if hub is None:
            hub = _HUBS[id(client)] = SubscriptionHub(client)
        subscription = hub.open(channels)
    if not subscription.wait_ready(SUBSCRIBE_TIMEOUT_SECONDS):
        subscription.close()
        raise TimeoutError(f"Redis did not confirm the subscription to {subscription.channels}")
    return subscription


# -- asyncio -----------------------------------------------------------------------------------


class AsyncSubscription(BaseSubscription):
    """A subscription on an event loop's hub: items wait in an ``asyncio.Queue``."""

    hub: AsyncSubscriptionHub

    def __init__(self, hub: AsyncSubscriptionHub, channels: Iterable[str]) -> None:
        super().__init__(hub, channels)
        self._items: asyncio.Queue[Item] = asyncio.Queue()
        self._ready = asyncio.Event()

    def push(self, item: Item) -> None:
        self._items.put_nowait(item)

    def mark_ready(self) -> None:
        self._ready.set()

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until Redis confirmed every channel; ``False`` on timeout."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def receive(self, timeout: float | None) -> Item | None:
        """The next item, or ``None`` after ``timeout`` seconds (``None``: no limit)."""
        try:
            item = await asyncio.wait_for(self._items.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if isinstance(item, HubFailure):
            raise item.error
        return item

    async def close(self) -> None:
        """Stop receiving; the hub unsubscribes channels nobody else wants."""
        await self.hub.close(self)


_ASYNC_HUBS: dict[tuple[int, int], AsyncSubscriptionHub] = {}


class AsyncSubscriptionHub(HubCore):
    """The hub of one ``redis.asyncio.Redis`` client on one event loop: a reader task.

    The last subscription to leave closes the connection at once (no reader left pending when
    the loop ends).
    """

    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop, sharded: bool) -> None:
        super().__init__(sharded=sharded)
        self.client = client
        self.loop = loop
        self._pubsub: Any = AsyncShardedSubscriber(client) if sharded else client.pubsub()
        self._reader: asyncio.Task[None] | None = None
        # redis-py's async PubSub connects on its first command without a lock: concurrent
        # first SUBSCRIBEs would each open a connection. One send at a time.
        self._sending = asyncio.Lock()

    @property
    def key(self) -> tuple[int, int]:
        """Registry key: one hub per event loop and client."""
        return id(self.loop), id(self.client)

    @property
    def alive(self) -> bool:
        """Whether this hub can still take subscriptions."""
        reader_ok = self._reader is None or not self._reader.done()
        return reader_ok and not self.retired and not self.loop.is_closed()

    async def open(self, channels: Iterable[str]) -> AsyncSubscription:
        """Register a subscription and send the SUBSCRIBE it needs."""
        subscription = AsyncSubscription(self, channels)
        new = self.join(subscription)  # before any await: nobody can retire the hub now
        try:
            if new:
                async with self._sending:
                    await getattr(self._pubsub, self.command("subscribe"))(*new)
        except BaseException:
            await self.close(subscription)
            raise
        if self._reader is None:
            self._reader = self.loop.create_task(self._read())
        return subscription

    async def close(self, subscription: AsyncSubscription) -> None:
        """Unregister a subscription; the last one closes the hub."""
        gone = self.leave(subscription)
        if self.idle():
            await self._retire()
        elif gone:
            await self._unsubscribe(gone)

    async def _unsubscribe(self, channels: list[str]) -> None:
        async with self._sending:
            if self.retired:  # the last subscription left meanwhile: the connection is closed
                return
            try:
                await getattr(self._pubsub, self.command("unsubscribe"))(*channels)
            except (RedisConnectionError, RedisTimeoutError):
                log.debug("Could not unsubscribe %s: the connection is down.", channels)

    async def _retire(self) -> None:
        """Close the connection, after any send in progress (later sends are skipped)."""
        if self.retired:
            return
        self.retired = True
        self._forget()
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            await asyncio.wait([self._reader])
        async with self._sending:
            await self._pubsub.aclose()

    async def _read(self) -> None:
        # Not ``while True``: Python 3.11's ``asyncio.wait_for`` loses a cancel that arrives as
        # its awaitable completes, so a retired hub's reader must also see that it is retired.
        while not self.retired:
            try:
                entry = await self._next_entry()
            except (RedisConnectionError, RedisTimeoutError) as error:
                log.warning("Pub/sub connection lost (%s); reconnecting.", error)
                await asyncio.sleep(RECONNECT_PAUSE_SECONDS)
                continue
            except Exception as error:  # an unexpected failure must reach every waiter
                log.exception("The pub/sub hub stopped.")
                self._forget()
                for subscription, item in self.everyone(HubFailure(error)):
                    subscription.push(item)
                return
            if entry:
                for subscription, item in self.route(entry):
                    subscription.push(item)
                stray = self.take_stray()
                if stray:
                    await self._unsubscribe(stray)

    async def _next_entry(self) -> dict[str, Any] | None:
        if self.sharded:
            return self.entry_of(
                await self._pubsub.get_sharded_message(timeout=READ_TIMEOUT_SECONDS)
            )
        entry: dict[str, Any] | None = await self._pubsub.get_message(timeout=READ_TIMEOUT_SECONDS)
        return entry

    def _forget(self) -> None:
        if _ASYNC_HUBS.get(self.key) is self:
            del _ASYNC_HUBS[self.key]


async def async_subscribe(client: Any, channels: Iterable[str]) -> AsyncSubscription:
    """Subscribe to ``channels`` through this event loop's hub of ``client``.

    Raises:
        TimeoutError: Redis did not confirm within ``SUBSCRIBE_TIMEOUT_SECONDS``.
    """
    loop = asyncio.get_running_loop()
    sharded = await async_uses_sharded_pubsub(client)  # before the lookup: no await after it
    hub = _ASYNC_HUBS.get((id(loop), id(client)))
    if hub is None or hub.loop is not loop or not hub.alive:
        hub = AsyncSubscriptionHub(client, loop, sharded)
        _ASYNC_HUBS[hub.key] = hub
    subscription = await hub.open(channels)
    if not await subscription.wait_ready(SUBSCRIBE_TIMEOUT_SECONDS):
        await subscription.close()
        raise TimeoutError(f"Redis did not confirm the subscription to {subscription.channels}")
    return subscription


def _forget_hubs_after_fork() -> None:
    """A forked child has none of its parent's reader threads or tasks: start afresh."""
    global _HUBS_LOCK
    _HUBS.clear()
    _ASYNC_HUBS.clear()
    _HUBS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_hubs_after_fork)
