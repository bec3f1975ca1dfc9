"""The admin's reads, as steps: queue counts, workers, one message by uuid, pages of messages,
dead letters.

Counts come from the indexes through one ``stats`` script per queue (pipelined: one round trip
on a single Redis, one per queue at most on a Cluster), never from a SCAN or from reading
bodies; listings read only the page they return. Times are the Redis server's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from alsek.admin.calls import AdminCalls, check_page, uuid_of
from alsek.admin.reading import (
    decode_data,
    error_of,
    failure_error,
    history_update,
    listed_message,
    server_ms,
    status_update,
    worker_info,
)
from alsek.admin.types import (
    LISTED_STATES,
    MessageInfo,
    MessageState,
    QueueStats,
    TaskStats,
    WorkerInfo,
)
from alsek.core.broker import keys
from alsek.core.broker.dlq import DeadLetter
from alsek.core.status.base import BaseStatusTracker
from alsek.core.status.types import TaskStatus
from alsek.core.steps.ops import Steps, batched
from alsek.core.worker.heartbeat import WORKER_REGISTRY, WorkerRecord, worker_key
from alsek.storage.result._base import BaseResultStore

#: Index entries read per round trip while a listing filters by task without a task index.
FILTER_CHUNK = 500


class InspectSteps(AdminCalls):
    """What an operator reads."""

    # -- workers ---------------------------------------------------------------------------

    def _worker_records_steps(self) -> Steps[tuple[int, list[WorkerRecord]]]:
        """The server's time, and the records of the workers whose beat has not expired."""
        now_reply, ids = yield batched(("TIME",), ("ZRANGE", self._full(WORKER_REGISTRY), 0, -1))
        if not ids:
            return server_ms(now_reply), []
        [raws] = yield batched(("MGET", *(self._full(worker_key(i)) for i in ids)))
        return server_ms(now_reply), [WorkerRecord.decode(raw) for raw in raws if raw]

    def _workers_steps(self) -> Steps[list[WorkerInfo]]:
        now, records = yield from self._worker_records_steps()
        workers = [worker_info(record, now) for record in records]
        return sorted(workers, key=lambda worker: (worker.host, worker.started_at, worker.id))

    # -- queues ----------------------------------------------------------------------------

    def _queues_steps(self) -> Steps[list[QueueStats]]:
        _, records = yield from self._worker_records_steps()
        served: dict[str, set[str]] = {}
        for record in records:
            for queue, tasks in record.serves.items():
                served.setdefault(queue, set()).update(tasks)
        registered = yield from self.broker._queues_steps()
        names = sorted(set(registered) | set(served))
        if not names:
            return []
        # The task sets first, so that the stats script declares every task's keys; then the
        # `since` of each ready set's head (the oldest ready age).
        task_sets = yield batched(*(("SMEMBERS", self._full(keys.tasks_key(q))) for q in names))
        calls = []
        for queue, task_set in zip(names, task_sets):
            tasks = sorted(set(task_set) | served.get(queue, set()))
            declared = [key for task in tasks for key in self.broker._task_keys(queue, task)]
            calls.append(self.broker._queue_script("stats", queue, *tasks, declared=declared))
        replies = yield batched(*calls)
        heads = [
            (queue, str(reply[i + 6]))
            for queue, reply in zip(names, replies)
            for i in range(5, len(reply), 7)
            if reply[i + 6]
        ]
        sinces: list[Any] = []
        if heads:
            sinces = yield batched(
                *(("HGET", self._full(keys.message_key(q, uuid)), "since") for q, uuid in heads)
            )
        oldest: dict[str, int] = {}
        for (queue, _), since in zip(heads, sinces):
            if since is not None:
                oldest[queue] = min(oldest.get(queue, int(since)), int(since))
        return [
            _queue_stats(queue, reply, oldest.get(queue)) for queue, reply in zip(names, replies)
        ]

    # -- one message -----------------------------------------------------------------------

    def _locate_steps(self, uuid: str) -> Steps[tuple[str, str, str | None] | None]:
        """Queue, task and progenitor of message ``uuid`` (its uuid record), or ``None``."""
        [record] = yield batched(("GET", self._full(keys.uuid_key(uuid))))
        if not record:
            return None
        queue, task, progenitor = str(record).split(keys.UUID_RECORD_SEPARATOR)
        return queue, task, progenitor or None

    def _message_steps(self, uuid: str) -> Steps[MessageInfo | None]:
        found = yield from self._locate_steps(uuid)
        if found is None:
            return None
        queue, task, progenitor = found
        subject = _Subject(queue, task, uuid, progenitor)
        result_name = BaseResultStore.get_storage_name(subject)
        failure_name = "failures:" + result_name.removeprefix("results:")
        replies = yield batched(
            ("HGET", self._full(keys.message_key(queue, uuid)), "data"),
            ("ZSCORE", self._full(keys.leases_key(queue)), uuid),
            ("ZSCORE", self._full(keys.delayed_key(queue)), uuid),
            ("HMGET", self._full(keys.dlq_key(queue, uuid)), "data", "reason"),
            ("GET", self._full(BaseStatusTracker.get_storage_name(subject))),
            ("LRANGE", self._full(BaseStatusTracker.get_history_name(subject)), 0, -1),
            ("GET", self._full(result_name)),
            ("GET", self._full(failure_name)),
        )
        body, leased, delayed, (dead, reason), status, history, result, failure = replies
        serializer = self._serializer
        current = status_update(serializer, status)
        raw = body if body is not None else dead
        data = decode_data(serializer, raw)
        state: MessageState
        if body is not None:
            state = "running" if leased is not None else "delayed" if delayed else "ready"
        elif dead is not None:
            state = "dead"
        elif result is not None or (current and current.value is TaskStatus.SUCCEEDED):
            state = "done"
        else:
            state = "unknown"
        timeline = [h for h in (history_update(serializer, item) for item in history) if h]
        if current and current.at is None and timeline and timeline[-1].value is current.value:
            current = current._replace(at=timeline[-1].at)  # a claim's status carries no time
        record = decode_data(serializer, result)
        return MessageInfo(
            uuid=uuid,
            queue=queue,
            task=str((data or {}).get("task_name") or task),
            state=state,
            data=data,
            status=current,
            history=timeline,
            result=record.get("result") if record else None,
            error=error_of(data, reason) or failure_error(serializer, failure),
        )

    # -- listings --------------------------------------------------------------------------

    def _ready_page_steps(
        self, queue: str, task: str | None, offset: int, limit: int
    ) -> Steps[list[tuple[str, str]]]:
        """(uuid, task) of the ready messages ``offset`` to ``offset + limit``, in the order
        consumers take them: best priority, then submission order, across tasks. Parked ones
        (their concurrency key full) are listed in their place: they wait as ready ones do."""
        if task:
            tasks = [task]
        else:
            [members] = yield batched(("SMEMBERS", self._full(keys.tasks_key(queue))))
            tasks = sorted(members)
        if not tasks:
            return []
        stop = offset + limit - 1
        sets = [(t, f(queue, t)) for t in tasks for f in (keys.ready_key, keys.task_parked_key)]
        replies = yield batched(
            *(("ZRANGE", self._full(name), 0, stop, "WITHSCORES") for _, name in sets)
        )
        heads = [
            (float(score), member, name)
            for (name, _), reply in zip(sets, replies)
            for member, score in _pairs(reply)
        ]
        heads.sort()
        return [(uuid_of(member), name) for _, member, name in heads[offset : offset + limit]]

    def _index_page_steps(
        self, queue: str, state: str, task: str | None, offset: int, limit: int
    ) -> Steps[list[tuple[str, str | None]]]:
        """(uuid, task) of the delayed (by ready time) or running (by lease deadline) messages
        ``offset`` to ``offset + limit``; a task's through its own index."""
        index = keys.delayed_key(queue) if state == "delayed" else keys.leases_key(queue)
        if task is None:
            [uuids] = yield batched(("ZRANGE", self._full(index), offset, offset + limit - 1))
            return [(uuid, None) for uuid in uuids]
        name = "delayed" if state == "delayed" else "leases"
        [uuids] = yield batched(
            ("ZRANGE", self._full(keys.task_index_key(queue, task, name)), 0, -1)
        )
        if not uuids:
            return []
        # A task's leases keep their first deadline: order them by the queue's (renewed) ones.
        [scores] = yield batched(("ZMSCORE", self._full(index), *uuids))
        ordered = sorted((float(s), u) for u, s in zip(uuids, scores) if s is not None)
        return [(uuid, task) for _, uuid in ordered[offset : offset + limit]]

    def _messages_steps(
        self, queue: str, state: str, task: str | None, offset: int, limit: int
    ) -> Steps[list[MessageInfo]]:
        if state not in LISTED_STATES:
            raise ValueError(f"state must be one of {', '.join(LISTED_STATES)}, got {state!r}")
        check_page(offset, limit)
        if state == "dead":
            letters = yield from self._dead_steps(queue, task, offset + limit)
            return [self._dead_info(letter) for letter in letters[offset:]]
        if state == "ready":
            page: Sequence[tuple[str, str | None]] = yield from self._ready_page_steps(
                queue, task, offset, limit
            )
        else:
            page = yield from self._index_page_steps(queue, state, task, offset, limit)
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
        letters: list[DeadLetter] | None = None
        if wanted is not None:
            letters = yield from self._dead_by_uuid_steps(queue, sorted(wanted))
        if letters is None:
            filtered = task is not None or wanted is not None
            letters = yield from self.broker._dlq_list_steps(queue, None if filtered else limit)
        selected = [
            letter
            for letter in letters
            if (wanted is None or letter.uuid in wanted)
            and (task is None or (letter.message is not None and letter.message.task_name == task))
        ]
        return selected if limit is None else selected[:limit]

    def _dead_by_uuid_steps(
        self, queue: str | None, uuids: Sequence[str]
    ) -> Steps[list[DeadLetter] | None]:
        """The dead letters ``uuids`` read by key (their queue: ``queue``, or their uuid
        records), oldest failure first, without listing the DLQ; ``None`` when a uuid's queue
        is not known (the caller lists the DLQ instead)."""
        if not uuids:
            return []
        if queue is not None:
            queues = [queue] * len(uuids)
        else:
            records = yield batched(*(("GET", self._full(keys.uuid_key(u))) for u in uuids))
            if not all(records):
                return None
            queues = [str(r).split(keys.UUID_RECORD_SEPARATOR)[0] for r in records]
        found = yield batched(
            *(("HGETALL", self._full(keys.dlq_key(q, u))) for q, u in zip(queues, uuids))
        )
        letters = [
            self.broker._dead_letter(q, u, fields)
            for q, u, fields in zip(queues, uuids, found)
            if fields
        ]
        return sorted(letters, key=lambda letter: letter.failed_at)

    def _dead_list_steps(
        self, queue: str | None, task: str | None, limit: int | None
    ) -> Steps[list[MessageInfo]]:
        letters = yield from self._dead_steps(queue, task, limit)
        return [self._dead_info(letter) for letter in letters]


class _Subject:
    """A message's identity, as status and result names need it."""

    def __init__(self, queue: str, task: str, uuid: str, progenitor: str | None) -> None:
        self.queue, self.task_name, self.uuid, self.progenitor_uuid = queue, task, uuid, progenitor
        self.callback_message_data = None
        self.result_ttl = None
        self.exception_details = None


def _queue_stats(queue: str, reply: Sequence[Any], oldest_since: int | None) -> QueueStats:
    """A ``stats.lua`` reply as ``QueueStats``; ``oldest_since``: the earliest ``since`` of
    its ready sets' heads (server ms), ``None`` when nothing is ready."""
    paused, delayed, running, dead, now = (int(value) for value in reply[:5])
    oldest = -1 if oldest_since is None else max(now - oldest_since, 0)
    tasks = [
        TaskStats(
            task=str(reply[i]),
            ready=int(reply[i + 1]),
            delayed=int(reply[i + 2]),
            running=int(reply[i + 3]),
            dead=int(reply[i + 4]),
            served=bool(int(reply[i + 5])),
        )
        for i in range(5, len(reply), 7)
    ]
    return QueueStats(
        queue=queue,
        ready=sum(task.ready for task in tasks),
        delayed=delayed,
        running=running,
        dead=dead,
        paused=bool(paused),
        oldest_ready_ms=None if oldest < 0 else oldest,
        tasks=tasks,
    )


def _pairs(reply: Any) -> list[tuple[str, Any]]:
    """(member, score) pairs of a ``WITHSCORES`` reply, flat or paired (RESP2 or RESP3)."""
    if reply and isinstance(reply[0], (list, tuple)):
        return [(str(member), score) for member, score in reply]
    return [(str(reply[i]), reply[i + 1]) for i in range(0, len(reply), 2)]
