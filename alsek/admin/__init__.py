"""The operator's API: queue depths, live workers, messages by uuid, pause, purge and the
dead-letter queue, for scripts, the ``alsek`` command and dashboards alike.

``Admin`` works with a ``Broker``, ``AsyncAdmin`` with an ``AsyncBroker``; both run the same
operations (``BaseAdmin``), so they answer alike.
"""

from alsek.admin.asyncio import AsyncAdmin
from alsek.admin.base import BaseAdmin
from alsek.admin.sync import Admin
from alsek.admin.types import (
    RUN_MS_BUCKETS,
    ErrorInfo,
    MessageInfo,
    QueueStats,
    TaskStats,
    ThroughputPoint,
    WorkerInfo,
)

__all__ = [
    "RUN_MS_BUCKETS",
    "Admin",
    "AsyncAdmin",
    "BaseAdmin",
    "ErrorInfo",
    "MessageInfo",
    "QueueStats",
    "TaskStats",
    "ThroughputPoint",
    "WorkerInfo",
]
