"""``BaseAdmin``: the operator's operations, written once as steps for ``Admin`` and
``AsyncAdmin``.

Every read is a few pipelined round trips whatever the backlog: counts come from the indexes
(sorted sets) and one script per queue, never from a SCAN or from reading bodies; listings read
only the page they return. Times are the Redis server's (``TIME``), so operators on hosts with
skewed clocks see the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from alsek.admin.reading import listed_message, server_ms, worker_info
from alsek.admin.types import LISTED_STATES, MessageInfo, WorkerInfo
from alsek.core.broker import BaseBroker, keys
from alsek.core.broker.dlq import DeadLetter
from alsek.core.steps.ops import Command, Steps, batched, call
from alsek.core.worker.heartbeat import WORKER_REGISTRY, worker_key
from alsek.defaults import DEFAULT_TTL
from alsek.storage.serialization import Serializer

#: Members of a ready set that start with the zero-padded sequence (see ``lib.lua``).
SEQ_DIGITS = 16
#: Index entries read per round trip while a listing filters by task.
FILTER_CHUNK = 500


def _uuid_of(member: str) -> str:
    return member[SEQ_DIGITS + 1 :]


def _check_page(offset: int, limit: int) -> None:
    for name, value, least in (("offset", offset, 0), ("limit", limit, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an int >= {least}, got {value!r}")


class BaseAdmin:
    """Inspect and manage queues, workers, messages and the dead-letter queue of a broker.

    Args:
        broker: the broker whose Redis (and namespace) to operate on; its serializer decodes
            the messages (nothing is unpickled unless it is a binary serializer).
    """

    def __init__(self, broker: BaseBroker) -> None:
        self.broker = broker

    def __repr__(self) -> str:
        return f"{type(self).__name__}(broker={self.broker!r})"

    @property
    def _serializer(self) -> Serializer:
        return self.broker.backend.serializer

    def _full(self, name: str) -> str:
        return f"{self.broker.backend.namespace}:{name}"

    # -- workers ---------------------------------------------------------------------------

    def _workers_steps(self) -> Steps[list[WorkerInfo]]:
        now_reply, ids = yield batched(("TIME",), ("ZRANGE", self._full(WORKER_REGISTRY), 0, -1))
        if not ids:
            return []
        [raws] = yield batched(("MGET", *(self._full(worker_key(i)) for i in ids)))
        now = server_ms(now_reply)
        workers = [worker_info(raw, now) for raw in raws if raw]
        return sorted(workers, key=lambda worker: (worker.host, worker.started_at, worker.id))

    # -- listings --------------------------------------------------------------------------

    def _tasks_steps(self, queue: str) -> Steps[list[str]]:
        [names] = yield batched(("SMEMBERS", self._full(keys.tasks_key(queue))))
        return sorted(names)

    def _ready_page_steps(
        self, queue: str, task: str | None, offset: int, limit: int
    ) -> Steps[list[tuple[str, str]]]:
        """(uuid, task) of the ready messages ``offset`` to ``offset + limit``, in the order
        consumers take them: best priority, then submission order, across tasks."""
        tasks = [task] if task else (yield from self._tasks_steps(queue))
        if not tasks:
            return []
        stop = offset + limit - 1
        replies = yield batched(
            *(
                ("ZRANGE", self._full(keys.ready_key(queue, t)), 0, stop, "WITHSCORES")
                for t in tasks
            )
        )
        heads = [
            (float(score), member, name)
            for name, reply in zip(tasks, replies)
            for member, score in _pairs(reply)
        ]
        heads.sort()
        return [(_uuid_of(member), name) for _, member, name in heads[offset : offset + limit]]

    def _index_page_steps(
        self, queue: str, index: str, task: str | None, offset: int, limit: int
    ) -> Steps[list[tuple[str, str | None]]]:
        """(uuid, task) of a per-queue index's members ``offset`` to ``offset + limit``,
        lowest score first; with ``task``, only that task's (read from each message)."""
        if task is None:
            uuids = yield batched(("ZRANGE", index, offset, offset + limit - 1))
            return [(uuid, None) for uuid in uuids[0]]
        found: list[tuple[str, str | None]] = []
        start = 0
        while len(found) < offset + limit:
            [chunk] = yield batched(("ZRANGE", index, start, start + FILTER_CHUNK - 1))
            if not chunk:
                break
            names = yield batched(
                *(("HGET", self._full(keys.message_key(queue, uuid)), "task") for uuid in chunk)
            )
            found += [(uuid, task) for uuid, name in zip(chunk, names) if name == task]
            start += FILTER_CHUNK
        return found[offset : offset + limit]

    def _messages_steps(
        self, queue: str, state: str, task: str | None, offset: int, limit: int
    ) -> Steps[list[MessageInfo]]:
        if state not in LISTED_STATES:
            raise ValueError(f"state must be one of {', '.join(LISTED_STATES)}, got {state!r}")
        _check_page(offset, limit)
        if state == "dead":
            letters = yield from self._dead_steps(queue, task, offset + limit)
            return [self._dead_info(letter) for letter in letters[offset:]]
        if state == "ready":
            page: Sequence[tuple[str, str | None]] = yield from self._ready_page_steps(
                queue, task, offset, limit
            )
        else:
            index = keys.delayed_key(queue) if state == "delayed" else keys.leases_key(queue)
            page = yield from self._index_page_steps(queue, self._full(index), task, offset, limit)
        if not page:
            return []
        bodies = yield batched(
            *(("HGET", self._full(keys.message_key(queue, uuid)), "data") for uuid, _ in page)
        )
        return [
            listed_message(self._serializer, queue, uuid, state, raw, name)  # type: ignore[arg-type]
            for (uuid, name), raw in zip(page, bodies)
            if raw is not None
        ]

    # -- the dead-letter queue ---------------------------------------------------------------

    def _dead_info(self, letter: DeadLetter) -> MessageInfo:
        task = letter.message.task_name if letter.message else None
        return listed_message(
            self._serializer, letter.queue, letter.uuid, "dead", letter.raw, task, letter.reason
        )

    def _dead_steps(
        self,
        queue: str | None,
        task: str | None,
        limit: int | None,
        uuids: Iterable[str] | None = None,
    ) -> Steps[list[DeadLetter]]:
        """Dead letters, oldest first, of ``queue`` (default: every queue), ``task`` and
        ``uuids`` when given."""
        wanted = None if uuids is None else set(uuids)
        filtered = task is not None or wanted is not None
        letters = yield from self.broker._dlq_list_steps(queue, None if filtered else limit)
        selected = [
            letter
            for letter in letters
            if (wanted is None or letter.uuid in wanted)
            and (task is None or (letter.message is not None and letter.message.task_name == task))
        ]
        return selected if limit is None else selected[:limit]

    def _dead_list_steps(
        self, queue: str | None, task: str | None, limit: int | None
    ) -> Steps[list[MessageInfo]]:
        letters = yield from self._dead_steps(queue, task, limit)
        return [self._dead_info(letter) for letter in letters]

    def _requeue_dead_steps(
        self, queue: str | None, task: str | None, uuids: Sequence[str] | None
    ) -> Steps[int]:
        letters = yield from self._dead_steps(queue, task, None, uuids)
        count = 0
        for letter in letters:
            if letter.message is None:
                continue  # an undecodable body cannot run: purge it instead
            yield from self.broker._requeue_steps(letter.message, DEFAULT_TTL, (), None)
            count += 1
        return count

    def _purge_dead_steps(
        self, queue: str | None, task: str | None, uuids: Sequence[str] | None
    ) -> Steps[int]:
        if task is None and uuids is None:
            return (yield from self.broker._purge_dlq_steps(queue))
        letters = yield from self._dead_steps(queue, task, None, uuids)
        by_queue: dict[str, list[str]] = {}
        for letter in letters:
            by_queue.setdefault(letter.queue, []).append(letter.uuid)
        count = 0
        for name, members in by_queue.items():
            commands: list[Command] = [
                ("DEL", *(self._full(keys.dlq_key(name, uuid)) for uuid in members)),
                ("ZREM", self._full(keys.dlq_index_key(name)), *members),
            ]
            deleted, _ = yield call(*commands, atomic=True)
            count += int(deleted)
        return count


def _pairs(reply: Any) -> list[tuple[str, Any]]:
    """(member, score) pairs of a ``WITHSCORES`` reply, flat or paired (RESP2 or RESP3)."""
    if reply and isinstance(reply[0], (list, tuple)):
        return [(str(member), score) for member, score in reply]
    return [(str(reply[i]), reply[i + 1]) for i in range(0, len(reply), 2)]
