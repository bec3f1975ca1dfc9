"""What pipelines and groups share: the task behind a step, shared waits, and what a group
must offer to be a pipeline's step (``GroupStep``, so a pipeline needs no import of groups)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

from alsek.core.message import Message
from alsek.core.task.base import BaseTask, built_by
from alsek.core.task.follow_ups import carried_options
from alsek.core.task.message_options import METADATA_KEY


def task_of(message: Message, what: str) -> BaseTask[Any, Any]:
    """The task that built ``message`` without submitting it (it submits and checks it).

    Raises:
        TypeError: not a message, or one no task built here with ``submit=False``.
    """
    if not isinstance(message, Message):
        raise TypeError(f"{what} takes Messages, got {type(message).__name__}")
    task = built_by(message)
    if task is None:
        raise TypeError(
            f"{message.summary} was not built by task.generate(..., submit=False) in this "
            f"process, so {what} has no task to check and submit it with: build it that way"
        )
    return task


def with_option(message: Message, name: str, value: Any) -> Message:
    """``message`` carrying the workflow option ``name`` in its metadata."""
    carried = {**carried_options(message), name: value}
    return message.update(metadata={**(message.metadata or {}), METADATA_KEY: carried})


def wait_left(deadline: float, timeout: int) -> int:
    """What is left of a ``timeout`` (ms) shared by several waits (0: do not wait)."""
    if timeout <= 0:
        return 0
    return max(1, int((deadline - time.monotonic()) * 1000))


class GroupStep(ABC):
    """A group as a pipeline's step: the previous step's ack submits its members (each fed the
    previous result unless it ignores it), and its completion callback is the next step."""

    @abstractmethod
    def as_step(self, completion: Message | None, fed: bool) -> dict[str, Any]:
        """Check and mark the members; the ``then_group`` option of the step before (record
        key, members' data, completion's data). ``fed``: members get the previous result."""

    @abstractmethod
    def start(self, completion: Message | None, **options: Any) -> Any:
        """Run the group as a pipeline's first step, ``completion`` after it."""

    @abstractmethod
    def results(self, store: Any, timeout: int = 0) -> Any:
        """Every member's result, in order."""
