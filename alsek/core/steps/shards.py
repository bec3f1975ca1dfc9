"""Sharded subscriptions on a cluster: one subscriber connection per node that owns a subscribed
channel, each read on its own, and channels moved to their new owner when a node dies or a slot
moves away.

Why not redis-py's ``ClusterPubSub``: it reads its node connections in turn, a slice of the wait
each, holding a lock while it reads. A publish on one node then waits for the other nodes'
slices, and every SSUBSCRIBE waits for the read in progress to end: a thousand waiters
subscribing one after another wait seconds. Here each node's connection has a reader of its own
that blocks on it alone, and a subscription is sent at once.

What the hub sees is what a single connection would give it: the (un)subscribe confirmations,
then messages. A channel moved to another node is subscribed there, and its new confirmation
tells the hub that publishes may have been missed (``RESYNC``). ``ShardCore`` holds the
decisions; ``ShardedSubscriber`` (threads) and ``AsyncShardedSubscriber`` (tasks) move bytes.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MovedError
from redis.exceptions import TimeoutError as RedisTimeoutError

from alsek.storage.backends.clients import plain_settings

log = logging.getLogger(__name__)

#: Longest blocking read of a node's reader, so that it notices when it is no longer needed.
NODE_READ_TIMEOUT_SECONDS = 1.0
#: Pause between two looks at the cluster while a dead node's channels wait for a new owner.
REROUTE_PAUSE_SECONDS = 0.25
#: Errors of a node that cannot be read any more.
NODE_LOST = (RedisConnectionError, RedisTimeoutError, MovedError)


class ShardCore:
    """Which node serves each channel, and which channels must move. No I/O."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.owner: dict[str, str] = {}  # channel -> name of the node it is subscribed on
        self.closed = False
        self._nodes: dict[str, Any] = {}  # node name -> its PubSub

    def node_for(self, channel: str) -> Any:
        """The node owning ``channel``'s slot, as the client sees the cluster now."""
        return self.client.get_node_from_key(channel)

    def channels_on(self, name: str) -> list[str]:
        """The channels subscribed on the node ``name``."""
        return [channel for channel, owner in self.owner.items() if owner == name]

    def _reads(self, name: str, pubsub: Any) -> bool:
        """Whether ``pubsub`` is (still) the connection to the node ``name``."""
        return bool(self._nodes.get(name) is pubsub)

    def moved_away(self, name: str, entry: dict[str, Any]) -> str | None:
        """The channel of an ``sunsubscribe`` nobody asked for (its slot left node ``name``)."""
        channel = entry.get("channel")
        if entry.get("type") != "sunsubscribe" or not isinstance(channel, str):
            return None
        return channel if self.owner.get(channel) == name else None


def _own_settings(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A node's connection settings without the cluster's own hooks and state (its on-connect,
    its maintenance handler), for a connection of our own to that node."""
    return {key: value for key, value in plain_settings(kwargs).items() if key != "retry"}


class ShardedSubscriber(ShardCore):
    """Sharded subscriptions of a blocking ``RedisCluster``, a reader thread per node.

    It offers what the hub calls on a redis-py ``PubSub``: ``ssubscribe``, ``sunsubscribe``,
    ``get_sharded_message`` and ``close``.
    """

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self._lock = threading.RLock()
        self._entries: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def ssubscribe(self, *channels: str) -> None:
        """Subscribe each channel on the node owning it."""
        for channel in channels:
            with self._lock:
                self._subscribe_on(self.node_for(channel), channel)

    def _subscribe_on(self, node: Any, channel: str) -> None:
        pubsub = self._nodes.get(node.name)
        new = pubsub is None
        if pubsub is None:
            pool = node.redis_connection.connection_pool
            settings = _own_settings(pool.connection_kwargs)
            # A pool of its own (it closes with the PubSub): the PubSub keeps it alive.
            own = redis.ConnectionPool(connection_class=pool.connection_class, **settings)
            pubsub = self._nodes[node.name] = redis.Redis(connection_pool=own).pubsub()
        try:
            pubsub.ssubscribe(channel)
        except BaseException:
            if new:  # no reader would ever read it: the next attempt starts afresh
                del self._nodes[node.name]
                pubsub.close()
            raise
        self.owner[channel] = node.name
        if new:
            threading.Thread(
                target=self._read, args=(node.name, pubsub), name="alsek-shard", daemon=True
            ).start()

    def sunsubscribe(self, *channels: str) -> None:
        """Unsubscribe each channel on the node it was subscribed on."""
        for channel in channels:
            with self._lock:
                pubsub = self._nodes.get(self.owner.pop(channel, ""))
            if pubsub is not None:
                pubsub.sunsubscribe(channel)

    def get_sharded_message(self, timeout: float) -> dict[str, Any] | None:
        """The next entry of any node, or ``None`` after ``timeout`` seconds."""
        try:
            return self._entries.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Close every node connection (the readers then stop)."""
        with self._lock:
            self.closed = True
            pubsubs, self._nodes = list(self._nodes.values()), {}
        for pubsub in pubsubs:
            pubsub.close()

    def _read(self, name: str, pubsub: Any) -> None:
        while not self.closed and self._reads(name, pubsub):
            try:
                entry = pubsub.get_message(timeout=NODE_READ_TIMEOUT_SECONDS)
            except NODE_LOST as error:
                log.warning("Lost the subscriber connection to %s (%s); moving on.", name, error)
                self._reroute(name, pubsub, self.channels_on(name))
                return
            except Exception as error:  # unexpected: the hub must hear it
                self._entries.put({"type": "error", "error": error})
                return
            if entry:
                self._entries.put(entry)
                moved = self.moved_away(name, entry)
                if moved is not None:
                    self._reroute(name, None, [moved])

    def _reroute(self, name: str, dead: Any, channels: list[str]) -> None:
        """Subscribe ``channels`` on the nodes that serve them now (``dead``: the connection
        that failed, dropped first)."""
        with self._lock:
            if dead is not None and self._reads(name, dead):
                del self._nodes[name]
        if dead is not None:
            dead.close()
        while channels and not self.closed:
            try:
                self.client.nodes_manager.initialize()
                with self._lock:
                    channels = [c for c in channels if self.owner.get(c) is not None]
                    while channels:
                        self._subscribe_on(self.node_for(channels[0]), channels[0])
                        channels.pop(0)
            except (*NODE_LOST, redis.RedisError) as error:
                log.debug("Channels of %s wait for a new owner: %s", name, error)
            if channels:
                threading.Event().wait(REROUTE_PAUSE_SECONDS)


class AsyncShardedSubscriber(ShardCore):
    """Sharded subscriptions of an asyncio ``RedisCluster``, a reader task per node (on the
    running event loop)."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self._readers: set[asyncio.Task[None]] = set()
        self._entries: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def ssubscribe(self, *channels: str) -> None:
        """Subscribe each channel on the node owning it."""
        for channel in channels:
            await self._subscribe_on(self.node_for(channel), channel)

    async def _subscribe_on(self, node: Any, channel: str) -> None:
        new = node.name not in self._nodes
        if new:
            # A pool of its own (it closes with the PubSub): the PubSub keeps it alive.
            own = redis.asyncio.ConnectionPool(
                connection_class=node.connection_class, **_own_settings(node.connection_kwargs)
            )
            self._nodes[node.name] = redis.asyncio.Redis(connection_pool=own).pubsub()
        pubsub = self._nodes[node.name]
        try:
            await pubsub.ssubscribe(channel)
        except BaseException:
            if new and self._reads(node.name, pubsub):  # the next attempt starts afresh
                del self._nodes[node.name]
                await pubsub.aclose()
            raise
        self.owner[channel] = node.name
        if new:
            reader = asyncio.get_running_loop().create_task(self._read(node.name, pubsub))
            self._readers.add(reader)
            reader.add_done_callback(self._readers.discard)

    async def sunsubscribe(self, *channels: str) -> None:
        """Unsubscribe each channel on the node it was subscribed on."""
        for channel in channels:
            pubsub = self._nodes.get(self.owner.pop(channel, ""))
            if pubsub is not None:
                await pubsub.sunsubscribe(channel)

    async def get_sharded_message(self, timeout: float) -> dict[str, Any] | None:
        """The next entry of any node, or ``None`` after ``timeout`` seconds."""
        try:
            return await asyncio.wait_for(self._entries.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def aclose(self) -> None:
        """Close every node connection and stop the readers."""
        self.closed = True
        pubsubs, self._nodes = list(self._nodes.values()), {}
        for reader in self._readers:
            reader.cancel()
        if self._readers:
            await asyncio.wait(self._readers)
        for pubsub in pubsubs:
            await pubsub.aclose()

    async def _read(self, name: str, pubsub: Any) -> None:
        while not self.closed and self._reads(name, pubsub):
            try:
                entry = await pubsub.get_message(timeout=NODE_READ_TIMEOUT_SECONDS)
            except NODE_LOST as error:
                log.warning("Lost the subscriber connection to %s (%s); moving on.", name, error)
                await self._reroute(name, pubsub, self.channels_on(name))
                return
            except Exception as error:  # unexpected: the hub must hear it
                self._entries.put_nowait({"type": "error", "error": error})
                return
            if entry:
                self._entries.put_nowait(entry)
                moved = self.moved_away(name, entry)
                if moved is not None:
                    await self._reroute(name, None, [moved])

    async def _reroute(self, name: str, dead: Any, channels: list[str]) -> None:
        if dead is not None and self._reads(name, dead):
            del self._nodes[name]
            await dead.aclose()
        while channels and not self.closed:
            try:
                await self.client.initialize()
                channels = [c for c in channels if self.owner.get(c) is not None]
                while channels:
                    await self._subscribe_on(self.node_for(channels[0]), channels[0])
                    channels.pop(0)
            except (*NODE_LOST, redis.RedisError) as error:
                log.debug("Channels of %s wait for a new owner: %s", name, error)
            if channels:
                await asyncio.sleep(REROUTE_PAUSE_SECONDS)
