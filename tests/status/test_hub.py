"""The shared subscriber connection: subscriptions leaving together never break one another."""

from __future__ import annotations

import asyncio
from typing import Any

from alsek.core.steps.hub import AsyncSubscription, Published, async_subscribe
from alsek.core.steps.sending import async_send
from alsek.storage.backends.clients import client_from_url


async def publish(client: Any, channel: str, data: str) -> None:
    """Publish as alsek does on ``client`` (SPUBLISH on a cluster with sharded pub/sub)."""
    await async_send(client, [("PUBLISH", channel, data)])


async def test_async_waiters_leaving_as_their_publishes_arrive_all_close_cleanly(
    redis_url: str,
) -> None:
    """The last one to leave closes the connection while others still unsubscribe."""
    client = client_from_url(redis_url, asyncio=True)

    async def wait_then_leave(subscription: AsyncSubscription) -> str:
        item = await subscription.receive(timeout=10)
        await subscription.close()
        assert isinstance(item, Published)
        return item.data

    try:
        for _ in range(5):
            subscriptions = [await async_subscribe(client, [f"ch-{i}"]) for i in range(300)]
            waiters = [asyncio.create_task(wait_then_leave(s)) for s in subscriptions]
            for index in range(300):
                await publish(client, f"ch-{index}", str(index))
            assert await asyncio.gather(*waiters) == [str(i) for i in range(300)]
    finally:
        await client.aclose()


async def test_a_new_async_subscription_after_the_hub_retired_gets_a_fresh_one(
    redis_url: str,
) -> None:
    client = client_from_url(redis_url, asyncio=True)
    try:
        first = await async_subscribe(client, ["ch"])
        await first.close()
        second = await async_subscribe(client, ["ch"])
        assert second.hub is not first.hub
        await publish(client, "ch", "hello")
        item = await second.receive(timeout=5)
        assert isinstance(item, Published) and item.data == "hello"
        await second.close()
    finally:
        await client.aclose()
