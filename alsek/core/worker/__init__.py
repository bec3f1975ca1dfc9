"""Worker pools: run claimed messages as futures in threads, processes or asyncio tasks."""

from alsek.core.worker.base import BaseWorkerPool
from alsek.core.worker.sync import ProcessWorkerPool, ThreadWorkerPool

__all__ = ["BaseWorkerPool", "ProcessWorkerPool", "ThreadWorkerPool"]
