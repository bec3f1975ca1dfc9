"""``pipeline(messages)`` and ``message_a | message_b``: each step runs after the previous one
succeeded, with its result as the last positional argument (Dramatiq's semantics), unless the
step was built with ``pipe_ignore=True``.

A pipeline is a callback chain (``callback_message_data``) whose later steps are marked
``piped`` (``alsek.core.task.follow_ups``): the worker's ack of one step submits the next in the
same round trip, and a step that fails for good ends the pipeline. Every step shares the first
step's lineage (``progenitor_uuid``), so the result store reads the chain's results in order.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from typing import Any

from alsek.core import message as message_module
from alsek.core.message import Message
from alsek.core.task.follow_ups import carried_options, mark_piped
from alsek.core.workflow.base import GroupStep, task_of, wait_left, with_option

__all__ = ["Pipeline", "pipeline", "task_of"]

#: A pipeline's step: a message, or a group (its members run side by side).
Step = Message | GroupStep


class Pipeline:
    """Steps that run one after the other, each fed the previous one's result.

    A step is a message or a group: a group's members get the previous step's result, and the
    step after a group gets none (it is the group's completion callback, submitted by the last
    member's ack); read the group's results with ``results``.

    Args:
        steps: messages (built with ``task.generate(..., submit=False)``), groups, or
            pipelines, whose steps are taken in order.

    Raises:
        ValueError: no steps, a message twice, or a group right after a group.
        TypeError: a step that is none of these.
    """

    def __init__(self, steps: Iterable[Message | GroupStep | Pipeline]) -> None:
        flat: list[Step] = []
        for step in steps:
            if isinstance(step, Pipeline):
                flat += step.steps
            elif isinstance(step, (Message, GroupStep)):
                flat.append(step)
            else:
                raise TypeError(
                    f"A pipeline's steps are Messages, Groups or Pipelines, got "
                    f"{type(step).__name__}"
                )
        if not flat:
            raise ValueError("A pipeline needs at least one step")
        messages = [step for step in flat if isinstance(step, Message)]
        if len({m.uuid for m in messages}) != len(messages):
            raise ValueError("A pipeline cannot hold the same message twice")
        for before, after in itertools.pairwise(flat):
            if isinstance(before, GroupStep) and isinstance(after, GroupStep):
                raise ValueError(
                    "A group cannot follow a group in a pipeline: put a message between them "
                    "(it becomes the first group's completion callback)"
                )
        self.steps: list[Step] = flat
        self._linked = False

    @property
    def messages(self) -> list[Message]:
        """The steps that are messages."""
        return [step for step in self.steps if isinstance(step, Message)]

    def __repr__(self) -> str:
        names = [s.task_name if isinstance(s, Message) else repr(s) for s in self.steps]
        return f"Pipeline({' | '.join(names)})"

    def __or__(self, other: Message | GroupStep | Pipeline) -> Pipeline:
        return Pipeline([self, other])

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def first(self) -> Message:
        """The message ``run`` submits (a pipeline starting with a group has none).

        Raises:
            TypeError: the first step is a group.
        """
        step = self.steps[0]
        if not isinstance(step, Message):
            raise TypeError(f"{self!r} starts with a group, not a message")
        return step

    @property
    def last(self) -> Message:
        """The step whose result is the pipeline's.

        Raises:
            TypeError: the last step is a group (read its results with ``result``).
        """
        step = self.steps[-1]
        if not isinstance(step, Message):
            raise TypeError(f"{self!r} ends with a group, not a message")
        return step

    def _link(self, fed: bool = False) -> Message | None:
        """Chain the steps (once), from the last; returns the first message (``None`` when a
        group comes first). ``fed``: the first step gets a previous result (the pipeline is
        itself a member of a pipeline's group).

        Raises:
            TypeError: a step not built by ``task.generate(..., submit=False)`` here.
            ValueError: a step that already has a callback.
            ValidationError: a step whose arguments, with the previous result, do not fit.
        """
        if self._linked:
            return self.steps[0] if isinstance(self.steps[0], Message) else None
        for message in self.messages:
            task_of(message, "pipeline")
            if message.callback_message_data:
                raise ValueError(
                    f"{message.summary} already has a callback; a pipeline chains its steps "
                    "itself (make the callback a step)"
                )
        first = self.steps[0]
        lineage = (first.progenitor_uuid or first.uuid) if isinstance(first, Message) else None
        rest: Message | None = None  # the head of the steps after the current one
        then_group: dict[str, Any] | None = None
        for index in reversed(range(len(self.steps))):
            step = self.steps[index]
            before = self.steps[index - 1] if index else None
            # The ack of a message feeds the next step; a group's completion is fed nothing.
            fed_here = isinstance(before, Message) or (index == 0 and fed)
            if isinstance(step, GroupStep):
                then_group = step.as_step(rest, fed_here)
                rest = None
                continue
            self._link_message(step, fed_here, lineage if index else None)
            if then_group is not None:
                with_option(step, "then_group", then_group)
                then_group = None
            elif rest is not None:
                step.update(callback_message_data=rest.data)
            rest = step
        self._linked = True
        return rest

    @staticmethod
    def _link_message(message: Message, fed: bool, lineage: str | None) -> None:
        piped = fed and not carried_options(message).get("pipe_ignore")
        task_of(message, "pipeline").check_role(message, "piped" if piped else "step")
        if piped:
            mark_piped(message)
        if lineage is not None:
            message.update(progenitor_uuid=lineage)

    def run(self, **options: Any) -> Any:
        """Submit the first step (the others follow as each succeeds); ``options`` go to
        ``broker.submit`` (e.g. ``ttl``). Returns the pipeline, or for an async first task a
        coroutine of it.

        Raises:
            TypeError, ValueError, ValidationError: see ``_link``; nothing was written.
            MessageAlreadyExistsError: the first step's uuid was submitted with another body.
        """
        first = self._link()
        head = self.steps[0]
        if isinstance(head, GroupStep):
            after = self.steps[1] if len(self.steps) > 1 else None
            submitted = head.start(after if isinstance(after, Message) else None, **options)
        else:
            assert first is not None
            submitted = task_of(first, "pipeline")._submit(first, **options)
        if submitted is not None and hasattr(submitted, "__await__"):
            return self._awaiting(submitted)
        return self

    async def _awaiting(self, submitted: Any) -> Pipeline:
        await submitted
        return self

    def result(self, store: Any, timeout: int = 0) -> Any:
        """The last step's result (a group's: the list of its members'), waiting up to
        ``timeout`` ms (a coroutine with an ``AsyncResultStore``).

        Raises:
            TaskFailedError: a step failed for good (the ones after it never run).
            TimeoutError: no result by then; KeyError: none and no ``timeout``.
        """
        last = self.steps[-1]
        if isinstance(last, GroupStep):
            return last.results(store, timeout=timeout)
        return store.get(last, timeout=timeout)

    def results(self, store: Any, timeout: int = 0) -> Any:
        """Every step's result, in order, waiting up to ``timeout`` ms in all (see
        ``result``)."""
        if store.backend.IS_ASYNC:
            return self._results_async(store, timeout)
        deadline = time.monotonic() + timeout / 1000
        results = []
        for step in self.steps:
            left = wait_left(deadline, timeout)
            if isinstance(step, GroupStep):
                results.append(step.results(store, timeout=left))
            else:
                results.append(store.get(step, timeout=left))
        return results

    async def _results_async(self, store: Any, timeout: int) -> list[Any]:
        deadline = time.monotonic() + timeout / 1000
        results = []
        for step in self.steps:
            left = wait_left(deadline, timeout)
            if isinstance(step, GroupStep):
                results.append(await step.results(store, timeout=left))
            else:
                results.append(await store.get(step, timeout=left))
        return results


def pipeline(messages: Iterable[Message | GroupStep | Pipeline]) -> Pipeline:
    """A ``Pipeline`` of ``messages`` (see ``Pipeline``)."""
    return Pipeline(messages)


def _compose(left: Message, right: Any) -> Any:
    if isinstance(right, (Message, GroupStep, Pipeline)):
        return Pipeline([left, right])
    return NotImplemented


message_module.compose_with = _compose
