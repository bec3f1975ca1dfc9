"""Sync worker pools: threads in elastic processes, and a process per message."""

from alsek.core.worker.sync.process import ProcessWorkerPool
from alsek.core.worker.sync.thread import ProcessGroup, ThreadsInProcessGroup, ThreadWorkerPool

__all__ = ["ProcessGroup", "ProcessWorkerPool", "ThreadWorkerPool", "ThreadsInProcessGroup"]
