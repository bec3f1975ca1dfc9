"""Sync worker pools: threads in elastic processes, and a process per message."""

from alsek.core.worker.sync.group import ProcessGroup, ThreadsInProcessGroup
from alsek.core.worker.sync.process import ProcessWorkerPool
from alsek.core.worker.sync.thread import ThreadWorkerPool

__all__ = ["ProcessGroup", "ProcessWorkerPool", "ThreadWorkerPool", "ThreadsInProcessGroup"]
