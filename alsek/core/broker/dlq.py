"""The dead-letter queue, as steps: count, list, requeue and purge failed messages.

A failed message is kept (``fail.lua``) in a hash ``dlq:<uuid>`` of its queue (body, reason,
time of failure) for ``dlq_ttl``, indexed by expiry in the queue's ``dlq`` sorted set; every
read first prunes the index of entries whose hash has expired.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from alsek.core.broker import keys
from alsek.core.broker.calls import BrokerCalls
from alsek.core.broker.replies import check_reply
from alsek.core.broker.submit import check_ttl
from alsek.core.message import Message
from alsek.core.steps.ops import Command, Steps, batched
from alsek.utils.temporal import utcnow_timestamp_ms


class DeadLetter(NamedTuple):
    """A dead-lettered message; ``message`` is ``None`` when its body could not be decoded."""

    queue: str
    uuid: str
    message: Message | None
    reason: str
    failed_at: int
    raw: str


class DeadLetterSteps(BrokerCalls):
    """The dead-letter operations of a broker."""

    def _prune_dlq_command(self, queue: str) -> Command:
        index = self._full(keys.dlq_index_key(queue))
        return ("ZREMRANGEBYSCORE", index, "-inf", utcnow_timestamp_ms())

    def _dlq_count_steps(self, queue: str | None) -> Steps[int]:
        queues = yield from self._queue_list_steps(queue)
        if not queues:
            return 0
        commands: list[Command] = []
        for name in queues:
            commands += [
                self._prune_dlq_command(name),
                ("ZCARD", self._full(keys.dlq_index_key(name))),
            ]
        replies = yield batched(*commands)
        return sum(int(count) for count in replies[1::2])

    def _dlq_list_steps(self, queue: str | None, limit: int | None) -> Steps[list[DeadLetter]]:
        queues = yield from self._queue_list_steps(queue)
        if not queues:
            return []
        stop = -1 if limit is None else max(limit, 1) - 1
        commands: list[Command] = []
        for name in queues:
            index = self._full(keys.dlq_index_key(name))
            commands += [self._prune_dlq_command(name), ("ZRANGE", index, 0, stop)]
        replies = yield batched(*commands)
        entries = [(name, uuid) for name, uuids in zip(queues, replies[1::2]) for uuid in uuids]
        if limit is not None:
            entries = entries[:limit]
        if not entries:
            return []
        bodies = yield batched(
            *(("HGETALL", self._full(keys.dlq_key(name, uuid))) for name, uuid in entries)
        )
        return [
            self._dead_letter(name, uuid, fields)
            for (name, uuid), fields in zip(entries, bodies)
            if fields
        ]

    def _dead_letter(self, queue: str, uuid: str, fields: dict[str, Any]) -> DeadLetter:
        raw = str(fields.get("data", ""))
        try:
            message: Message | None = self._decode_body(raw)
        except Exception:  # an undecodable body is kept raw, with its reason
            message = None
        return DeadLetter(
            queue=queue,
            uuid=uuid,
            message=message,
            reason=str(fields.get("reason", "")),
            failed_at=int(fields.get("failed_at") or 0),
            raw=raw,
        )

    def _requeue_steps(self, message: Message, ttl: int) -> Steps[Message]:
        check_ttl(ttl)
        fresh = message.clone()
        fresh.update(retries=0, ready_at=utcnow_timestamp_ms(), linked_lock=None)
        request = self._queue_script(
            "requeue",
            fresh.queue,
            fresh.task_name,
            fresh.uuid,
            fresh.priority,
            fresh.ready_at,
            self._encode_body(fresh),
            ttl,
        )
        [reply] = yield self._write(request)
        check_reply(reply, message, "requeue")
        return fresh

    def _purge_dlq_steps(self, queue: str | None) -> Steps[int]:
        queues = yield from self._queue_list_steps(queue)
        if not queues:
            return 0
        replies = yield batched(*(self._queue_script("purge_dlq", name) for name in queues))
        return sum(int(count) for count in replies)
