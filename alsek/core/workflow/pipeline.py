"""``pipeline(messages)`` and ``message_a | message_b``: each step runs after the previous one
succeeded, with its result as the last positional argument (Dramatiq's semantics), unless the
step was built with ``pipe_ignore=True``.

A pipeline is a callback chain (``callback_message_data``) whose later steps are marked
``piped`` (``alsek.core.task.follow_ups``): the worker's ack of one step submits the next in the
same round trip, and a step that fails for good ends the pipeline. Every step shares the first
step's lineage (``progenitor_uuid``), so the result store reads the chain's results in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alsek.core import message as message_module
from alsek.core.message import Message
from alsek.core.task.base import BaseTask, built_by
from alsek.core.task.follow_ups import carried_options, mark_piped

__all__ = ["Pipeline", "pipeline", "task_of"]


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


class Pipeline:
    """Messages that run one after the other, each fed the previous one's result.

    Args:
        steps: messages (built with ``task.generate(..., submit=False)``) or pipelines, whose
            steps are taken in order.

    Raises:
        ValueError: no steps, or a message twice.
        TypeError: a step that is neither a message nor a pipeline.
    """

    def __init__(self, steps: Iterable[Message | Pipeline]) -> None:
        messages: list[Message] = []
        for step in steps:
            if isinstance(step, Pipeline):
                messages += step.messages
            elif isinstance(step, Message):
                messages.append(step)
            else:
                raise TypeError(
                    f"A pipeline's steps are Messages or Pipelines, got {type(step).__name__}"
                )
        if not messages:
            raise ValueError("A pipeline needs at least one step")
        if len({m.uuid for m in messages}) != len(messages):
            raise ValueError("A pipeline cannot hold the same message twice")
        self.messages: list[Message] = messages
        self._linked = False

    def __repr__(self) -> str:
        return f"Pipeline({' | '.join(m.task_name for m in self.messages)})"

    def __or__(self, other: Message | Pipeline) -> Pipeline:
        return Pipeline([self, other])

    def __len__(self) -> int:
        return len(self.messages)

    @property
    def first(self) -> Message:
        """The step submitted by ``run``."""
        return self.messages[0]

    @property
    def last(self) -> Message:
        """The step whose result is the pipeline's."""
        return self.messages[-1]

    def _link(self) -> BaseTask[Any, Any]:
        """Chain the steps (once) and return the first step's task.

        Raises:
            TypeError: a step not built by ``task.generate(..., submit=False)`` here.
            ValueError: a step that already has a callback.
            ValidationError: a step whose arguments, with the previous result, do not fit.
        """
        tasks = [task_of(m, "pipeline") for m in self.messages]
        if self._linked:
            return tasks[0]
        for index, (message, task) in enumerate(zip(self.messages, tasks)):
            if message.callback_message_data:
                raise ValueError(
                    f"{message.summary} already has a callback; a pipeline chains its steps "
                    "itself (make the callback a step)"
                )
            piped = index > 0 and not carried_options(message).get("pipe_ignore")
            task.check_role(message, "piped" if piped else "step")
        lineage = self.first.progenitor_uuid or self.first.uuid
        for message in self.messages[1:]:
            mark_piped(message).update(progenitor_uuid=lineage)
        for before, after in zip(reversed(self.messages[:-1]), reversed(self.messages[1:])):
            before.update(callback_message_data=after.data)
        self._linked = True
        return tasks[0]

    def run(self, **options: Any) -> Any:
        """Submit the first step (the others follow as each succeeds); ``options`` go to
        ``broker.submit`` (e.g. ``ttl``). Returns the pipeline, or for an async first task a
        coroutine of it.

        Raises:
            TypeError, ValueError, ValidationError: see ``_link``; nothing was written.
            MessageAlreadyExistsError: the first step's uuid was submitted with another body.
        """
        submitted = self._link()._submit(self.first, **options)
        if submitted is not None and hasattr(submitted, "__await__"):
            return self._awaiting(submitted)
        return self

    async def _awaiting(self, submitted: Any) -> Pipeline:
        await submitted
        return self

    def result(self, store: Any, timeout: int = 0) -> Any:
        """The last step's result, waiting up to ``timeout`` ms (a coroutine with an
        ``AsyncResultStore``).

        Raises:
            TaskFailedError: a step failed for good (the ones after it never run).
            TimeoutError: no result by then; KeyError: none and no ``timeout``.
        """
        return store.get(self.last, timeout=timeout)

    def results(self, store: Any, timeout: int = 0) -> Any:
        """Every step's result, in order (see ``result``)."""
        return store.get(self.first, timeout=timeout, descendants=True)


def pipeline(messages: Iterable[Message | Pipeline]) -> Pipeline:
    """A ``Pipeline`` of ``messages`` (see ``Pipeline``)."""
    return Pipeline(messages)


def _compose(left: Message, right: Any) -> Any:
    if isinstance(right, (Message, Pipeline)):
        return Pipeline([left, right])
    return NotImplemented


message_module.compose_with = _compose
