"""Submitting a group: its members in one round trip, with the record that counts them.

A group's record is a counter of the members still to succeed, in the slot of its members'
queue (``keys.group_key``), and, when it has one, its completion callback: a message body kept
beside the counter. Each member carries the counter's key (its task adds a
``GroupMemberDoneEffect`` to its ack), and the ack that brings the counter to 0 submits the
callback inside the same script (``group_member_done`` in lib_finish.lua): exactly once, and never
when a member fails for good (its counter then expires with the record).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from alsek.core.broker import keys
from alsek.core.broker.effects import Effect
from alsek.core.broker.submit import FollowUp, SubmitSteps
from alsek.core.message import Message
from alsek.core.steps.ops import Request, Steps
from alsek.core.task_limits import carried_limits
from alsek.defaults import DEFAULT_TTL


class GroupFollowUp(NamedTuple):
    """A group submitted within another operation's round trip (a pipeline's group step): its
    members, its record at ``key``, and its completion callback (the rest of the pipeline)."""

    key: str
    members: Sequence[FollowUp]
    completion: Message | None = None


class GroupSteps(SubmitSteps):
    """The group operations of a broker, and the messages and groups that other operations
    submit along (``follow_ups``)."""

    def _follow_up_calls(
        self, follow_ups: Sequence[FollowUp | GroupFollowUp]
    ) -> tuple[list[Request], list[int]]:
        """Requests submitting ``follow_ups`` within another operation's round trip, and the
        index of each message's submit among them (a group's record goes first)."""
        calls: list[Request] = []
        positions: list[int] = []
        for follow_up in follow_ups:
            if isinstance(follow_up, GroupFollowUp):
                members = follow_up.members
                calls += self._group_record(
                    follow_up.key, len(members), DEFAULT_TTL, follow_up.completion
                )
            else:
                members = [follow_up]
            for member in members:
                positions.append(len(calls))
                calls += self._next_message_calls(member.message, member.effects)
        return calls, positions

    def group_key(self, queue: str, group_id: str) -> str:
        """The full key counting the members of group ``group_id`` (members in ``queue``)."""
        return self._full(keys.group_key(queue, group_id))

    def check_group_slot(self, messages: Sequence[Message], completion: Message | None) -> None:
        """On Redis Cluster a member's ack counts the group down in its own script, so every
        member and the callback must be in the group's queue (one slot)."""
        queues = {m.queue for m in messages} | ({completion.queue} if completion else set())
        if self.one_queue_per_call and len(queues) > 1:
            raise ValueError(
                f"On Redis Cluster a group's messages and its completion callback must share "
                f"one queue (its hash slot); got queues {sorted(queues)}: give them one queue"
            )

    def _group_record(
        self, key: str, count: int, ttl: int, completion: Message | None
    ) -> list[Request]:
        """Idempotent writes of the group's record: the counter (kept if it exists: a resent
        call must not count finished members again) and the completion callback."""
        requests: list[Request] = [("SET", key, count, "PX", ttl, "NX")]
        if completion is None:
            return requests
        prepared = self._prepare(completion, ttl)
        record_ttl = 0 if self.one_queue_per_call else ttl + (self.dlq_ttl or 0)
        callback = f"{key}:callback"
        fields = {
            "queue": completion.queue,
            "task": completion.task_name,
            "uuid": completion.uuid,
            "prio": completion.priority,
            "data": prepared.body,
            "ttl": ttl,
            "record_ttl": record_ttl,
        }
        limits = carried_limits(completion)
        if limits is not None:  # read by group_member_done as the L effect would write them
            fields.update(climit=limits.concurrency, ckey=limits.key, rlimit=limits.rate)
            fields["rwindow"] = limits.window_ms
        requests += [("HSET", callback, *(v for pair in fields.items() for v in pair))]
        requests += [("PEXPIRE", callback, ttl)]
        # The callback's queue, if new, is registered now: the script that submits it later
        # cannot (the registry is in another slot).
        return requests + [self._register_call(q, ttl) for q in self._unregistered([completion])]

    def _submit_group_steps(
        self,
        messages: Sequence[Message],
        key: str,
        completion: Message | None,
        ttl: int,
        effects: Sequence[Sequence[Effect]] | None,
    ) -> Steps[None]:
        if not messages:
            raise ValueError("A group needs at least one message")
        self.check_group_slot(messages, completion)
        record = self._group_record(key, len(messages), ttl, completion)
        yield from self._submit_many_steps(messages, ttl, effects, record)
