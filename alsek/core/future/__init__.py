"""Futures: one execution of one message, and the outcome plans every pool shares."""

from alsek.core.future.sync import (
    MainThreadTaskFuture,
    ProcessTaskFuture,
    TaskFuture,
    ThreadTaskFuture,
)

__all__ = ["MainThreadTaskFuture", "ProcessTaskFuture", "TaskFuture", "ThreadTaskFuture"]
