"""Submit messages once a SQLAlchemy session's transaction commits (``alsek[sqlalchemy]``).

A message submitted inside a transaction can run before the rows it names are committed (the
worker does not find them), or for rows whose transaction then rolls back. Build it without
submitting it, and hand it to the session::

    with Session(engine) as session, session.begin():
        session.add(order)
        submit_after_commit(session, ship.generate(args=(order.id,), submit=False))

It is submitted (through its task: SUBMITTED status, ``on_submit``, middleware) right after
the outermost transaction commits; it is dropped if the transaction rolls back, or if the
savepoint (``begin_nested()``) it was handed in rolls back; it is never submitted twice. A
process that dies before the commit submits nothing, as its transaction never committed.

The submit comes after the commit: a process that dies between the two loses the submit (the
rows are committed, the message is not). Where that matters, keep the work in a table written
in the transaction and have a trigger task pick it up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from alsek.core.message import Message
from alsek.core.task.base import built_by

__all__ = ["submit_after_commit"]

log = logging.getLogger(__name__)

#: Where a session keeps the messages waiting for its commit (``Session.info``).
PENDING_KEY = "alsek.after_commit"


class _Pending(NamedTuple):
    """A message waiting for the commit of ``transaction`` (and of every transaction above)."""

    transaction: SessionTransaction
    message: Message
    task: Any
    options: dict[str, Any]


def submit_after_commit(
    session: Session, message_or_messages: Message | Iterable[Message], **options: Any
) -> None:
    """Submit the message(s) once ``session``'s outermost transaction commits; drop them if it,
    or the savepoint they were handed in, rolls back. A session without a transaction begins
    one.

    Each message must come from a sync task's ``generate(..., submit=False)`` (or deferred
    mode) in this process: its task submits it. ``options`` go to the submit (e.g. ``ttl``).

    Raises:
        TypeError: a message that no task built here without submitting it, or one of an
            async task; nothing is registered then.
    """
    messages = (
        [message_or_messages]
        if isinstance(message_or_messages, Message)
        else list(message_or_messages)
    )
    tasks = [_task_of(message) for message in messages]
    transaction = session.get_nested_transaction() or session.get_transaction() or session.begin()
    pending = _pending(session)
    for message, task in zip(messages, tasks):
        pending.append(_Pending(transaction, message, task, dict(options)))


def _task_of(message: Message) -> Any:
    if not isinstance(message, Message):
        raise TypeError(f"submit_after_commit takes Messages, got {type(message).__name__}")
    task = built_by(message)
    if task is None:
        raise TypeError(
            f"{message.summary} was not built by a task's generate(..., submit=False) in this "
            "process, so there is no task to submit it: build it that way"
        )
    if task._alsek_task_kind != "sync":
        raise TypeError(
            f"{message.summary} belongs to the async task {task.name!r}: submit_after_commit "
            "submits from SQLAlchemy's (sync) commit event, so use a sync task"
        )
    return task


def _pending(session: Session) -> list[_Pending]:
    """The session's waiting messages; the first call starts listening to its transactions."""
    if PENDING_KEY not in session.info:
        session.info[PENDING_KEY] = []
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_soft_rollback", _after_soft_rollback)
    pending: list[_Pending] = session.info[PENDING_KEY]
    return pending


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released: its messages wait for the outermost commit
    ready, session.info[PENDING_KEY] = session.info[PENDING_KEY], []
    failures: list[Exception] = []
    for entry in ready:
        try:
            entry.task._submit(entry.message, **entry.options)
        except Exception as error:  # the others are still submitted
            log.error(
                "%s was not submitted after the commit: %s: %s",
                entry.message.summary,
                type(error).__name__,
                error,
            )
            failures.append(error)
    if failures:
        raise failures[0]


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    """Drop the messages handed in the transaction that rolled back, or in one inside it."""
    pending: list[_Pending] = session.info[PENDING_KEY]
    kept = [entry for entry in pending if not _inside(entry.transaction, previous_transaction)]
    if len(kept) < len(pending):
        log.info("Rollback: %d message(s) will not be submitted", len(pending) - len(kept))
    session.info[PENDING_KEY] = kept


def _inside(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False
