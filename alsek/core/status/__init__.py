"""Task status tracking: stored per message, published on every change, written in the same
round trip as the broker operation that causes it (see ``base`` for the layout and the effects).

``StatusTrackerIntegrityScanner`` lives in ``alsek.core.status.integrity`` (it needs APScheduler
and the broker, so it is not imported here).
"""

from alsek.core.status.asyncio import AsyncStatusTracker
from alsek.core.status.base import BaseStatusTracker
from alsek.core.status.sync import StatusTracker
from alsek.core.status.types import TERMINAL_TASK_STATUSES, StatusUpdate, TaskStatus

__all__ = [
    "TERMINAL_TASK_STATUSES",
    "AsyncStatusTracker",
    "BaseStatusTracker",
    "StatusTracker",
    "StatusUpdate",
    "TaskStatus",
]
