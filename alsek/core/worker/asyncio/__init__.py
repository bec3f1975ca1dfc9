"""Asyncio worker pools."""

from alsek.core.worker.asyncio.asyncio import AsyncSingleProcessWorkerPool
from alsek.core.worker.asyncio.base import AsyncBaseWorkerPool

__all__ = ["AsyncBaseWorkerPool", "AsyncSingleProcessWorkerPool"]
