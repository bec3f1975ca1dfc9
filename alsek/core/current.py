"""``current_message()``: the message the calling code runs for, in any pool.

A context variable, so each worker thread, asyncio task and process sees its own message:
threads and processes set it around their run, and asyncio gives every task a copy of the
context it was created in. Code called by a task (a helper, a logger filter, a limiter) can
read it without the message being passed down.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

from alsek.core.message import Message

__all__ = ["current_message", "start_running", "stop_running"]

_current: ContextVar[Message | None] = ContextVar("alsek_current_message", default=None)


def current_message() -> Message | None:
    """The message being run here (from ``before_process`` to ``post_op``); ``None`` outside a
    run."""
    return _current.get()


def start_running(message: Message) -> Token[Message | None]:
    """Make ``message`` the current message, until ``stop_running`` with the token returned
    (a plain call rather than a context manager: it runs for every message)."""
    return _current.set(message)


def stop_running(token: Token[Message | None]) -> None:
    """Put back the current message ``start_running`` replaced."""
    _current.reset(token)
