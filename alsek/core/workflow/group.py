"""``group(messages)``: messages that run side by side, with a callback once all succeeded.

``run()`` submits every member in one round trip, with a record in Redis counting the members
still to succeed (``alsek.core.broker.groups``). Each member's ack counts it down inside the
ack's own script; the ack that reaches 0 submits the completion callback
(``add_completion_callback``) in that same script, so it is submitted exactly once, whatever
workers die or repeat themselves, and never when a member fails for good. A member may be a
pipeline: it counts once its last step succeeded. A group may be a pipeline's step (see
``Pipeline``).

On Redis Cluster, the members, the record and the callback must share one slot: a group whose
messages or callback span queues is refused there.
"""

from __future__ import annotations

import time
import uuid as uuid_module
from collections.abc import Iterable
from typing import Any

from alsek.core.message import Message
from alsek.core.task.follow_ups import carried_options, mark_piped
from alsek.core.workflow.base import GroupStep, task_of, wait_left, with_option
from alsek.core.workflow.pipeline import Pipeline
from alsek.defaults import DEFAULT_TTL
from alsek.exceptions import TaskFailedError

__all__ = ["Group", "group"]


class Group(GroupStep):
    """Messages (or pipelines) that run side by side.

    Args:
        members: messages built with ``task.generate(..., submit=False)``, or pipelines of
            them.

    Raises:
        ValueError: no members, or a message twice.
        TypeError: a member that is neither a message nor a pipeline.
    """

    def __init__(self, members: Iterable[Message | Pipeline]) -> None:
        self.members: list[Message | Pipeline] = list(members)
        for member in self.members:
            if not isinstance(member, (Message, Pipeline)):
                raise TypeError(
                    f"A group's members are Messages or Pipelines, got {type(member).__name__}"
                )
        if not self.members:
            raise ValueError("A group needs at least one member")
        uuids = [m.uuid for member in self.members for m in _messages_of(member)]
        if len(set(uuids)) != len(uuids):
            raise ValueError("A group cannot hold the same message twice")
        #: Names the group's record in Redis.
        self.group_id = uuid_module.uuid4().hex
        self.completion: Message | Pipeline | None = None
        self._submitted = False

    def __repr__(self) -> str:
        return f"Group({self.group_id}, {len(self.members)} members)"

    def __len__(self) -> int:
        return len(self.members)

    def __or__(self, other: Message | GroupStep | Pipeline) -> Pipeline:
        return Pipeline([self, other])

    def add_completion_callback(self, callback: Message | Pipeline) -> Group:
        """Submit ``callback`` (a message or a pipeline) once every member has succeeded;
        never if one fails for good. Call it before ``run``.

        Raises:
            RuntimeError: the group was already run; ValueError: it has a callback already.
        """
        if self._submitted:
            raise RuntimeError(f"{self!r} already ran: add its completion callback before run()")
        if self.completion is not None:
            raise ValueError(f"{self!r} already has a completion callback")
        self.completion = callback
        return self

    @property
    def heads(self) -> list[Message]:
        """What ``run`` submits: each member, or its first step."""
        return [m.first if isinstance(m, Pipeline) else m for m in self.members]

    @property
    def tails(self) -> list[Message]:
        """Whose results are the group's: each member, or its last step."""
        return [m.last if isinstance(m, Pipeline) else m for m in self.members]

    def _prepare(self, fed: bool = False) -> tuple[list[Any], str, Message | None]:
        """Check the members, mark them as the group's and link pipelines; returns the heads'
        tasks, the record's key and the callback's first message. ``fed``: the members get a
        previous step's result (unless built with ``pipe_ignore=True``)."""
        heads = self.heads
        # Tasks of either kind (sync or async: their shells differ, see ``run``).
        tasks: list[Any] = [task_of(head, "group") for head in heads]
        key = tasks[0].broker.group_key(heads[0].queue, self.group_id)
        for tail in self.tails:
            with_option(tail, "group", key)
        for member, task in zip(self.members, tasks):
            if isinstance(member, Pipeline):
                member._link(fed)
            elif fed and not carried_options(member).get("pipe_ignore"):
                task.check_role(member, "piped")
                mark_piped(member)
            else:
                task.check_role(member, "step")
        completion = self.completion
        first = completion.first if isinstance(completion, Pipeline) else completion
        if first is not None:
            # The ack that counts the group down to 0 submits it: it declares its keys.
            for tail in self.tails:
                with_option(tail, "group_callback", [first.queue, first.task_name, first.uuid])
        if isinstance(completion, Pipeline):
            completion._link()
            return tasks, key, completion.first
        if completion is not None:
            task_of(completion, "add_completion_callback").check_role(completion, "step")
        return tasks, key, completion

    def run(self, ttl: int = DEFAULT_TTL) -> Any:
        """Submit every member in one round trip (``ttl``: how long, in ms, the members and the
        group's record live). Returns the group, or for async tasks a coroutine of it.

        Raises:
            TypeError: a message not built by ``task.generate(..., submit=False)`` here.
            ValidationError: a member whose arguments do not fit its task.
            ValueError: on Redis Cluster, members or callback in several queues.
            MessageAlreadyExistsError: a member's uuid was already submitted.
        """
        if self._submitted:
            raise RuntimeError(f"{self!r} already ran")
        tasks, key, completion = self._prepare()
        heads = self.heads
        effects = [task.submit_effects(head) for head, task in zip(heads, tasks)]
        submitted = tasks[0].broker.submit_group(heads, key, completion, ttl, effects)
        self._submitted = True
        if submitted is not None and hasattr(submitted, "__await__"):
            return self._after_async(submitted, tasks)
        for head, task in zip(heads, tasks):
            task._submitted(head)
        return self

    def as_step(self, completion: Message | None, fed: bool) -> dict[str, Any]:
        """This group as a pipeline's step (see ``GroupStep``)."""
        self.completion = completion
        tasks, key, _ = self._prepare(fed)
        tasks[0].broker.check_group_slot(self.heads, completion)
        self._submitted = True  # the step before submits it
        return {
            "key": key,
            "members": [head.data for head in self.heads],
            "completion": completion.data if completion is not None else None,
        }

    def start(self, completion: Message | None, **options: Any) -> Any:
        """Run as a pipeline's first step, ``completion`` (the next step) after it."""
        self.completion = completion
        self._submitted = False
        return self.run(**options)

    async def _after_async(self, submitted: Any, tasks: list[Any]) -> Group:
        await submitted
        for head, task in zip(self.heads, tasks):
            await task._submitted(head)
        return self

    def _failed(self, index: int, error: TaskFailedError) -> TaskFailedError:
        tail = self.tails[index]
        return TaskFailedError(f"Member {index} of group {self.group_id} ({tail.summary}): {error}")

    def results(self, store: Any, timeout: int = 0) -> Any:
        """Every member's result, in order, waiting up to ``timeout`` ms in all (a coroutine
        with an ``AsyncResultStore``).

        Raises:
            TaskFailedError: naming the member that failed for good.
            TimeoutError: not all results by then; KeyError: one missing and no ``timeout``.
        """
        if store.backend.IS_ASYNC:
            return self._results_async(store, timeout)
        deadline = time.monotonic() + timeout / 1000
        results = []
        for index, tail in enumerate(self.tails):
            try:
                results.append(store.get(tail, timeout=wait_left(deadline, timeout)))
            except TaskFailedError as error:
                raise self._failed(index, error) from error
        return results

    async def _results_async(self, store: Any, timeout: int) -> list[Any]:
        deadline = time.monotonic() + timeout / 1000
        results = []
        for index, tail in enumerate(self.tails):
            try:
                results.append(await store.get(tail, timeout=wait_left(deadline, timeout)))
            except TaskFailedError as error:
                raise self._failed(index, error) from error
        return results

    def completed(self, store: Any) -> Any:
        """Whether every member has its result (a coroutine with an ``AsyncResultStore``)."""
        if store.backend.IS_ASYNC:
            return self._completed_async(store)
        return all(store.exists(tail) for tail in self.tails)

    async def _completed_async(self, store: Any) -> bool:
        for tail in self.tails:
            if not await store.exists(tail):
                return False
        return True


def _messages_of(member: Message | Pipeline) -> list[Message]:
    return member.messages if isinstance(member, Pipeline) else [member]


def group(members: Iterable[Message | Pipeline]) -> Group:
    """A ``Group`` of ``members`` (see ``Group``)."""
    return Group(members)
