"""Sync worker pools: threads in elastic processes, a process per message, and threads in
this process."""

from alsek.core.worker.sync.group import ProcessGroup, ThreadsInProcessGroup
from alsek.core.worker.sync.inprocess import InProcessThreadPool
from alsek.core.worker.sync.process import ProcessWorkerPool
from alsek.core.worker.sync.thread import ThreadWorkerPool

__all__ = [
    "InProcessThreadPool",
    "ProcessGroup",
    "ProcessWorkerPool",
    "ThreadWorkerPool",
    "ThreadsInProcessGroup",
]
