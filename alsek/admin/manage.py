"""The admin's actions, as steps: pause and resume a queue, purge its waiting messages, revoke
a message or run a delayed one now, requeue or purge dead letters."""

from __future__ import annotations

from collections.abc import Sequence

from alsek.admin.inspect import InspectSteps
from alsek.admin.types import PURGEABLE_STATES
from alsek.core.broker import keys
from alsek.core.broker.dlq import DeadLetter
from alsek.core.broker.effects import DeleteEffect, Effect
from alsek.core.broker.replies import OK
from alsek.core.message import Message
from alsek.core.status.types import TaskStatus
from alsek.core.steps.ops import ScriptCall, Steps, batched
from alsek.defaults import DEFAULT_TTL
from alsek.exceptions import RevokedError
from alsek.storage.result._base import BaseResultStore
from alsek.utils.parsing import ExceptionDetails, get_exception_name
from alsek.utils.temporal import utcnow_timestamp_ms

#: Messages a purge deletes per script call (each call is short; Redis stays responsive).
PURGE_PER_CALL = 5_000


class ManageSteps(InspectSteps):
    """What an operator changes."""

    def _pause_steps(self, queue: str) -> Steps[None]:
        yield batched(("SET", self._full(keys.paused_key(queue)), "1"))

    def _resume_steps(self, queue: str) -> Steps[bool]:
        [was] = yield batched(self.broker._queue_script("resume", queue))
        return bool(was)

    def _purge_steps(self, queue: str, state: str) -> Steps[int]:
        if state not in PURGEABLE_STATES:
            raise ValueError(f"state must be one of {', '.join(PURGEABLE_STATES)}, got {state!r}")
        count = 0
        for part in ("ready", "delayed") if state == "all" else (state,):
            more = 1
            while more:
                call = yield from self._purge_call(queue, part)
                [(deleted, more)] = yield batched(call)
                count += int(deleted)
        return count

    def _purge_call(self, queue: str, state: str) -> Steps[ScriptCall]:
        """Read up to ``PURGE_PER_CALL`` waiting entries of ``queue`` (and its task set), so
        that the purge script declares every key it deletes; see ``purge.lua``."""
        [tasks] = yield batched(("SMEMBERS", self._full(keys.tasks_key(queue))))
        names = sorted(tasks)
        entries: list[str] = []
        uuids: list[str] = []
        if state == "ready":
            # a parked message (its concurrency key full) is queued as much as a ready one
            sets = [
                (t, name)
                for t in names
                for name in (keys.ready_key(queue, t), keys.task_parked_key(queue, t))
            ]
            heads = yield batched(
                *(("ZRANGE", self._full(name), 0, PURGE_PER_CALL - 1) for _, name in sets)
            )
            for (task, _), members in zip(sets, heads):
                for member in members[: PURGE_PER_CALL - len(uuids)]:
                    entries += [task, member]
                    uuids.append(member.split(":", 1)[1])
        else:
            [uuids] = yield batched(
                ("ZRANGE", self._full(keys.delayed_key(queue)), 0, PURGE_PER_CALL - 1)
            )
            entries = list(uuids)
        declared = [key for task in names for key in self.broker._task_keys(queue, task)]
        for uuid in uuids:
            declared += self.broker._message_keys(queue, uuid, None)
        args = (state, len(names), *names, *entries)
        return self.broker._queue_script("purge", queue, *args, declared=declared)

    # -- one message -------------------------------------------------------------------------

    def _status_effects(self, message: Message, status: TaskStatus, exists: bool) -> list[Effect]:
        """The status an action records, when the message has a status at all."""
        return self._tracker.effects(message, status) if exists else []

    def _revoke_steps(self, uuid: str) -> Steps[bool]:
        found = yield from self._locate_steps(uuid)
        if found is None:
            return False
        queue, task, _ = found
        subject = Message(task, queue=queue, uuid=uuid)
        raw, has_status = yield batched(
            ("HGET", self._full(keys.message_key(queue, uuid)), "data"),
            ("EXISTS", self._full(self._tracker.get_storage_name(subject))),
        )
        if raw is None:
            return False
        message = self.broker._decode_body(raw)
        details = ExceptionDetails(get_exception_name(RevokedError), "Revoked by an operator")
        message.update(exception_details=details.as_dict())
        effects = self._status_effects(message, TaskStatus.FAILED, bool(has_status))
        yield from self.broker._revoke_steps(message, effects)
        return True

    def _run_now_steps(self, uuid: str) -> Steps[bool]:
        """Make delayed message ``uuid`` (a delay, or a retry's backoff) ready at once."""
        found = yield from self._locate_steps(uuid)
        if found is None:
            return False
        queue = found[0]
        [raw] = yield batched(("HGET", self._full(keys.message_key(queue, uuid)), "data"))
        if raw is None:
            return False
        message = self.broker._decode_body(raw)
        message.update(ready_at=utcnow_timestamp_ms())
        body = self.broker._encode_body(message)
        request = self.broker._message_script("run_now", message, uuid, raw, body)
        [reply] = yield batched(request)
        return str(reply) == OK

    # -- the dead-letter queue ---------------------------------------------------------------

    def _requeue_dead_steps(
        self, queue: str | None, task: str | None, uuids: Sequence[str] | None
    ) -> Steps[int]:
        letters = [
            letter
            for letter in (yield from self._dead_steps(queue, task, None, uuids))
            if letter.message is not None  # an undecodable body cannot run: purge it instead
        ]
        if not letters:
            return 0
        statuses = yield batched(
            *(("EXISTS", self._full(self._tracker.get_storage_name(m))) for m in _messages(letters))
        )
        for message, has_status in zip(_messages(letters), statuses):
            failure = "failures:" + BaseResultStore.get_storage_name(message).removeprefix(
                "results:"
            )
            effects = [
                *self._status_effects(message, TaskStatus.SUBMITTED, bool(has_status)),
                DeleteEffect(self._full(failure)),
            ]
            yield from self.broker._requeue_steps(message, DEFAULT_TTL, effects, None)
        return len(letters)

    def _purge_dead_steps(
        self, queue: str | None, task: str | None, uuids: Sequence[str] | None
    ) -> Steps[int]:
        if task is None and uuids is None:
            return (yield from self.broker._purge_dlq_steps(queue))
        letters = yield from self._dead_steps(queue, task, None, uuids)
        by_queue: dict[str, list[DeadLetter]] = {}
        for letter in letters:
            by_queue.setdefault(letter.queue, []).append(letter)
        if not by_queue:
            return 0
        counts = yield batched(
            *(self._purge_dead_call(q, members) for q, members in by_queue.items())
        )
        return sum(int(count) for count in counts)

    def _purge_dead_call(self, queue: str, letters: Sequence[DeadLetter]) -> ScriptCall:
        """Delete ``letters`` of ``queue``, declaring each one's keys (its task's read from
        its body: an undecodable letter declares none)."""
        declared: list[str] = []
        for letter in letters:
            task = letter.message.task_name if letter.message is not None else None
            declared += self.broker._message_keys(queue, letter.uuid, task)
        uuids = [letter.uuid for letter in letters]
        return self.broker._queue_script("purge_dead", queue, *uuids, declared=declared)


def _messages(letters: Sequence[DeadLetter]) -> list[Message]:
    return [letter.message for letter in letters if letter.message is not None]
