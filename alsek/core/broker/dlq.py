"""The dead-letter queue, as steps: count, list, requeue and purge failed messages.

A failed message is kept (``fail.lua``) in a hash ``dlq:<uuid>`` of its queue (body, reason,
time of failure) for ``dlq_ttl``, indexed by expiry in the queue's ``dlq`` sorted set; every
read first prunes the index of entries whose hash has expired (by the server's clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from alsek.core.broker import keys
from alsek.core.broker.effects import Effect, effect_keys, encode_effects
from alsek.core.broker.registry import RegistrySteps
from alsek.core.broker.replies import check_reply
from alsek.core.broker.submit import check_ttl, limit_effects
from alsek.core.message import Message
from alsek.core.steps.ops import ScriptCall, Steps, batched
from alsek.utils.temporal import utcnow_timestamp_ms


class DeadLetter(NamedTuple):
    """A dead-lettered message; ``message`` is ``None`` when its body could not be decoded."""

    queue: str
    uuid: str
    message: Message | None
    reason: str
    failed_at: int
    raw: str


class DeadLetterSteps(RegistrySteps):
    """The dead-letter operations of a broker."""

    def _dlq_index_call(self, queue: str, limit: int) -> ScriptCall:
        """Read ``queue``'s DLQ index, pruned by the server's clock (``limit``: -1 every uuid,
        0 none); see ``dlq_index.lua``."""
        return self._queue_script("dlq_index", queue, limit)

    def _dlq_count_steps(self, queue: str | None) -> Steps[int]:
        queues = yield from self._queue_list_steps(queue)
        if not queues:
            return 0
        replies = yield batched(*(self._dlq_index_call(name, 0) for name in queues))
        return sum(int(count) for count, _ in replies)

    def _dlq_list_steps(self, queue: str | None, limit: int | None) -> Steps[list[DeadLetter]]:
        queues = yield from self._queue_list_steps(queue)
        if not queues:
            return []
        most = -1 if limit is None else max(limit, 1)
        replies = yield batched(*(self._dlq_index_call(name, most) for name in queues))
        entries = [(name, uuid) for name, (_, uuids) in zip(queues, replies) for uuid in uuids]
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

    def _requeue_steps(
        self,
        message: Message,
        ttl: int,
        effects: Sequence[Effect],
        backoff_settings: dict[str, Any] | None,
    ) -> Steps[Message]:
        """Requeue a dead letter with retries reset (and ``backoff_settings``, the task's
        current backoff, when given); ``effects`` ride along (e.g. SUBMITTED, and the failure
        record cleared)."""
        check_ttl(ttl)
        fresh = message.clone()
        fresh.update(
            retries=0,
            ready_at=utcnow_timestamp_ms(),
            linked_lock=None,
            **({"backoff_settings": backoff_settings} if backoff_settings is not None else {}),
        )
        effects, beside = self._recording(fresh, effects, ttl)
        declared = [*self._message_keys(fresh.queue, fresh.uuid, fresh.task_name)]
        declared += effect_keys(effects)
        request = self._queue_script(
            "requeue",
            fresh.queue,
            fresh.task_name,
            fresh.uuid,
            fresh.priority,
            fresh.ready_at,
            self._encode_body(fresh),
            ttl,
            *encode_effects([*effects, *limit_effects(fresh)]),
            declared=declared,
        )
        [reply, *_] = yield self._write(request, *beside)
        check_reply(reply, message, "requeue")
        return fresh

    def _purge_dlq_steps(self, queue: str | None) -> Steps[int]:
        queues = yield from self._queue_list_steps(queue)
        if not queues:
            return 0
        # What to delete is read first, so that the script declares every key it deletes; a
        # message dead-lettered between the read and the call is left to the next purge.
        reads = yield batched(
            *(self._dlq_index_call(name, -1) for name in queues),
            *(("SMEMBERS", self._full(keys.tasks_key(name))) for name in queues),
        )
        calls = []
        for name, (_, uuids), tasks in zip(queues, reads, reads[len(queues) :]):
            declared = [self._full(keys.dlq_key(name, uuid)) for uuid in uuids]
            for task in sorted(tasks):
                declared.append(self._full(keys.task_index_key(name, task, "dlq")))
            calls.append(
                self._queue_script("purge_dlq", name, len(tasks), *sorted(tasks), *uuids,
                                   declared=declared)
            )  # fmt: skip
        replies = yield batched(*calls)
        return sum(int(count) for count in replies)
