"""Consumers: claim messages under leases, and block on Redis when there is nothing to do."""

from alsek.core.consumer.asyncio import AsyncConsumer
from alsek.core.consumer.base import BaseConsumer, dedup_messages
from alsek.core.consumer.sync import Consumer

__all__ = ["AsyncConsumer", "BaseConsumer", "Consumer", "dedup_messages"]
