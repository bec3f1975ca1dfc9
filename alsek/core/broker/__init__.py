"""The broker: messages in Redis, claimed under leases, every operation one atomic script."""

from alsek.core.broker._base import (
    BaseBroker,
    Claim,
    ClaimSource,
    DeadLetter,
    FollowUp,
    GroupFollowUp,
)
from alsek.core.broker.asyncio import AsyncBroker
from alsek.core.broker.sync import Broker

__all__ = [
    "AsyncBroker",
    "BaseBroker",
    "Broker",
    "Claim",
    "ClaimSource",
    "DeadLetter",
    "FollowUp",
    "GroupFollowUp",
]
