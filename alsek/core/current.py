"""``current_message()``: the message the calling code runs for, in any pool.

A context variable, so each worker thread, asyncio task and process sees its own message:
threads and processes set it around their run, and asyncio gives every task a copy of the
context it was created in. Code called by a task (a helper, a logger filter, a limiter) can
read it without the message being passed down.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from alsek.core.message import Message

__all__ = ["current_message", "running"]

_current: ContextVar[Message | None] = ContextVar("alsek_current_message", default=None)


def current_message() -> Message | None:
    """The message being run here (from ``before_process`` to ``post_op``); ``None`` outside a
    run."""
    return _current.get()


@contextmanager
def running(message: Message) -> Iterator[None]:
    """Make ``message`` the current message for the ``with`` block."""
    token = _current.set(message)
    try:
        yield
    finally:
        _current.reset(token)
