"""Every module path and name the interface contract (SPEC Part II) gives stays importable.

The consolidation moved code into smaller modules; users' imports must not notice.
"""

from __future__ import annotations

import importlib

import pytest

#: module → names SPEC Part II places there (its section headings).
SPEC_NAMES: dict[str, tuple[str, ...]] = {
    "alsek": (
        "Broker",
        "Lock",
        "Message",
        "StatusTracker",
        "task",
        "__version__",
        "AsyncBroker",
        "AsyncLock",
        "AsyncStatusTracker",
    ),
    "alsek.exceptions": ("AlsekError", "ValidationError", "TaskFailedError"),
    "alsek.storage.backends.redis.sync": ("RedisBackend",),
    "alsek.storage.backends.redis.asyncio": ("AsyncRedisBackend",),
    "alsek.storage.backends.lazy": ("LazyClient",),
    "alsek.core.message": ("Message",),
    "alsek.core.lock.base": ("BaseLock",),
    "alsek.core.lock.sync": ("Lock", "ProcessLock", "ThreadLock"),
    "alsek.core.lock.asyncio": ("AsyncLock",),
    "alsek.core.broker._base": ("BaseBroker",),
    "alsek.core.broker.sync": ("Broker",),
    "alsek.core.broker.asyncio": ("AsyncBroker",),
    "alsek.core.status.types": ("TaskStatus", "StatusUpdate"),
    "alsek.core.status.sync": ("StatusTracker",),
    "alsek.core.status.asyncio": ("AsyncStatusTracker",),
    "alsek.core.status.integrity": ("StatusTrackerIntegrityScanner",),
    "alsek.storage.result._base": ("BaseResultStore",),
    "alsek.storage.result.sync": ("ResultStore",),
    "alsek.storage.result.asyncio": ("AsyncResultStore",),
    "alsek.core.task.base": ("BaseTask",),
    "alsek.core.task.sync": ("Task", "TriggerTask", "TriggerTaskMixin"),
    "alsek.core.task.asyncio": ("AsyncTask", "AsyncTriggerTask"),
    "alsek.core.task.decorator": ("task",),
    "alsek.core.consumer.base": ("BaseConsumer",),
    "alsek.core.consumer.sync": ("Consumer",),
    "alsek.core.consumer.asyncio": ("AsyncConsumer",),
    "alsek.core.future.sync": (
        "TaskFuture",
        "ThreadTaskFuture",
        "ProcessTaskFuture",
        "MainThreadTaskFuture",
    ),
    "alsek.core.future.asyncio": ("AsyncTaskFuture",),
    "alsek.core.worker.base": ("BaseWorkerPool",),
    "alsek.core.worker.sync.thread": ("ThreadWorkerPool",),
    "alsek.core.worker.sync.process": ("ProcessWorkerPool",),
    "alsek.core.worker.asyncio.base": ("AsyncBaseWorkerPool",),
    "alsek.core.worker.asyncio.asyncio": ("AsyncSingleProcessWorkerPool",),
    "alsek.cli.cli": ("main",),
    "alsek.defaults": (),
    "alsek.types": (),
    "alsek.core.backoff": ("Backoff", "ConstantBackoff", "LinearBackoff", "ExponentialBackoff"),
    "alsek.storage.serialization": ("Serializer", "JsonSerializer"),
    "alsek.storage.backends.base": ("Backend", "AsyncBackend"),
    "alsek.core.lock.helpers": (),
    "alsek.core.task.helpers": (),
    "alsek.core.worker.helpers": (),
    "alsek.tools.iteration": (),
    "alsek.utils.namespacing": (),
    "alsek.utils.parsing": (),
    "alsek.utils.temporal": (),
    "alsek.utils.waiting": (),
    "alsek.utils.system": (),
    "alsek.utils.logging": ("setup_logging", "get_logger"),
    "alsek.utils.scanning": (),
}


@pytest.mark.parametrize("module", sorted(SPEC_NAMES))
def test_spec_names_import_from_their_spec_module(module: str) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in SPEC_NAMES[module] if not hasattr(imported, name)]
    assert missing == [], f"{module} lacks {missing}"
