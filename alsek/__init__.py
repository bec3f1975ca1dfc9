"""alsek: a Redis-backed task queue that never loses a job.

The public names are imported lazily (PEP 562), so ``import alsek`` stays cheap and no module
inside the package ever needs to import this one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alsek._version import __version__
from alsek.utils.exports import lazy_exports

_EXPORTS = {
    "AsyncBroker": "alsek.core.broker",
    "Broker": "alsek.core.broker",
    "current_message": "alsek.core.current",
    "AsyncLock": "alsek.core.lock",
    "Lock": "alsek.core.lock",
    "Message": "alsek.core.message",
    "AsyncStatusTracker": "alsek.core.status",
    "StatusTracker": "alsek.core.status",
    "AsyncTask": "alsek.core.task",
    "Task": "alsek.core.task",
    "task": "alsek.core.task",
    "Group": "alsek.core.workflow",
    "group": "alsek.core.workflow",
    "Pipeline": "alsek.core.workflow",
    "pipeline": "alsek.core.workflow",
}

__all__ = [
    "AsyncBroker",
    "AsyncLock",
    "AsyncStatusTracker",
    "AsyncTask",
    "Broker",
    "Group",
    "Lock",
    "Message",
    "Pipeline",
    "StatusTracker",
    "Task",
    "__version__",
    "current_message",
    "group",
    "pipeline",
    "task",
]

if TYPE_CHECKING:
    from alsek.core.broker import AsyncBroker, Broker
    from alsek.core.current import current_message
    from alsek.core.lock import AsyncLock, Lock
    from alsek.core.message import Message
    from alsek.core.status import AsyncStatusTracker, StatusTracker
    from alsek.core.task import AsyncTask, Task, task
    from alsek.core.workflow import Group, Pipeline, group, pipeline


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
