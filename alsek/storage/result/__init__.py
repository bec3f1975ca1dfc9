"""Task results in Redis, written in the same round trip as the ack (see ``_base``)."""

from alsek.storage.result._base import BaseResultStore
from alsek.storage.result.asyncio import AsyncResultStore
from alsek.storage.result.sync import ResultStore

__all__ = ["AsyncResultStore", "BaseResultStore", "ResultStore"]
