"""Test helpers for pub/sub that hold on every server kind (classic or sharded pub/sub)."""

from __future__ import annotations

from typing import Any

from alsek.core.steps.publishing import (
    async_uses_sharded_pubsub,
    uses_sharded_pubsub,
)
from alsek.core.steps.sending import send
from alsek.storage.backends.clients import is_cluster

_SHARD_COUNT = "PUBSUB SHARDNUMSUB"


def _count(reply: Any, channel: str) -> int:
    pairs = reply.items() if isinstance(reply, dict) else reply
    return int(dict(pairs).get(channel, 0))


def subscriber_count(client: Any, channel: str) -> int:
    """How many connections subscribe to ``channel`` (SHARDNUMSUB on the node owning it when
    the client's pub/sub is sharded)."""
    if uses_sharded_pubsub(client):
        node = client.get_node_from_key(channel)
        return _count(client.execute_command(_SHARD_COUNT, channel, target_nodes=node), channel)
    return _count(client.pubsub_numsub(channel), channel)


async def async_subscriber_count(client: Any, channel: str) -> int:
    """``subscriber_count`` for an asyncio client."""
    if await async_uses_sharded_pubsub(client):
        node = client.get_node_from_key(channel)
        reply = await client.execute_command(_SHARD_COUNT, channel, target_nodes=node)
        return _count(reply, channel)
    return _count(await client.pubsub_numsub(channel), channel)


def publish(client: Any, channel: str, data: str) -> None:
    """Publish as alsek does on ``client`` (SPUBLISH on a cluster with sharded pub/sub)."""
    send(client, [("PUBLISH", channel, data)])


def kill_subscriber_connections(client: Any) -> int:
    """Kill every pub/sub connection of the server (of every node of a cluster)."""
    if not is_cluster(client):
        return int(client.client_kill_filter(_type="pubsub"))
    return sum(
        int(client.execute_command("CLIENT KILL", "TYPE", "pubsub", target_nodes=node))
        for node in client.get_nodes()
    )


def subscriber_connections(client: Any) -> list[int]:
    """How many channels each pub/sub connection of the server (every node of a cluster)
    listens to, sharded channels included."""
    if is_cluster(client):
        lists = [client.client_list(_type="pubsub", target_nodes=n) for n in client.get_nodes()]
    else:
        lists = [client.client_list(_type="pubsub")]
    counts = [int(c.get("sub", 0)) + int(c.get("ssub", 0)) for found in lists for c in found]
    return [count for count in counts if count]


class Spy:
    """A subscriber of its own (not the process' hub), to see what is published on
    ``channel``, sync tokens included."""

    def __init__(self, client: Any, channel: str) -> None:
        self.sharded = uses_sharded_pubsub(client)
        self.pubsub = client.pubsub()
        if self.sharded:
            self.pubsub.ssubscribe(channel)
        else:
            self.pubsub.subscribe(channel)

    def next_data(self, timeout: float) -> str | None:
        """The next published payload, or ``None`` (nothing within ``timeout`` seconds, or a
        subscription notice)."""
        if self.sharded:
            entry = self.pubsub.get_sharded_message(timeout=timeout)
        else:
            entry = self.pubsub.get_message(timeout=timeout)
        if entry and entry.get("type") in ("message", "smessage"):
            return str(entry["data"])
        return None

    def close(self) -> None:
        self.pubsub.close()
