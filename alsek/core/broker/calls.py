"""How broker operations address Redis: key names, script calls, message bodies.

``BrokerCalls`` is the ground every group of broker steps stands on (``submit``, ``dlq`` and
``_base``): the namespace prefix, the ARGV convention of the scripts (prefix, Redis-side clock
fallback, then the operation's arguments), encoding and decoding of message bodies, and the
reads several operations need. No I/O: it builds requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from alsek.core.broker import keys
from alsek.core.broker.effects import (
    Effect,
    RetainEffect,
    SetEffect,
    effect_commands,
    effect_keys,
    encode_effects,
)
from alsek.core.broker.scripts import get_script
from alsek.core.message import Message, carried_options
from alsek.core.run_timing import run_ms
from alsek.core.steps.ops import Command, Request, RoundTrip, ScriptCall, batched
from alsek.core.task_limits import carried_limits
from alsek.storage.backends.base import BaseBackend
from alsek.utils.temporal import utcnow_timestamp_ms


def lease_owner(message: Message) -> str:
    """Owner id of the lease the message carries, or ``""`` when it carries none."""
    lock = message.linked_lock
    return lock["owner_id"] if lock else ""


def counted_run_ms(message: Message) -> str:
    """The ``run_ms`` argument of the scripts that end an attempt (``count_outcome`` in
    ``lib_status.lua``): the run's length, or ``-1`` when the message did not run here."""
    length = run_ms(message)
    return "-1" if length is None else str(length)


def failure_reason(message: Message) -> str:
    """One line saying why a message failed, from its exception details."""
    details = message.exception_details
    if details is None:
        return "failed"
    return f"{details.name}: {details.text}" if details.text else details.name


@lru_cache(maxsize=4096)
def _queue_key_names(prefix: str, queue: str) -> tuple[str, ...]:
    """Full names of ``queue``'s own keys, which every script call about it declares: the
    same for every call, so built once."""
    return tuple(prefix + short for short in keys.queue_keys(queue))


class BrokerCalls:
    """Names, script calls and bodies of one broker (its backend's namespace and serializer)."""

    backend: BaseBackend
    dlq_ttl: int | None
    wait_replicas: int
    wait_timeout_ms: int
    _one_queue_per_call: bool | None

    # -- names -----------------------------------------------------------------------------

    @property
    def _prefix(self) -> str:
        return f"{self.backend.namespace}:"

    def _full(self, short_name: str) -> str:
        return f"{self._prefix}{short_name}"

    def _script(
        self,
        name: str,
        route_queue: str,
        *args: str | int | float,
        declared: Sequence[str] = (),
        now: int | None = None,
    ) -> ScriptCall:
        """A script call routed to ``route_queue``'s slot; KEYS = that queue's own keys and the
        ``declared`` ones (full names: every key the script touches), ARGV = prefix, now,
        *args."""
        own = _queue_key_names(self._prefix, route_queue)
        names = tuple(dict.fromkeys((*own, *declared)))
        now = utcnow_timestamp_ms() if now is None else now
        return ScriptCall(get_script(name), names, (self._prefix, now, *args))

    def _write(self, *requests: Request) -> RoundTrip:
        """A round trip of writes that decide a message's fate, or lease it (a claim: a
        lease a failover could undo would let the message run twice): batched, and waiting
        for ``wait_replicas`` replicas when the broker asks for that."""
        replicas = (self.wait_replicas, self.wait_timeout_ms) if self.wait_replicas else None
        return batched(*requests, replicas=replicas)

    def _queue_script(
        self,
        name: str,
        queue: str,
        *args: str | int | float,
        declared: Sequence[str] = (),
        now: int | None = None,
    ) -> ScriptCall:
        """A script call about one queue; ARGV = prefix, now, queue, *args."""
        return self._script(name, queue, queue, *args, declared=declared, now=now)

    def _task_keys(self, queue: str, task_name: str | None) -> list[str]:
        """Full names of a task's keys in ``queue`` (none for an unknown task)."""
        return [self._full(name) for name in keys.task_keys(queue, task_name)] if task_name else []

    def _message_keys(self, queue: str, uuid: str, task_name: str | None) -> list[str]:
        """Full names of every key a script changing one message may touch: its own (body,
        lease, revocation flag, dead letter) and its task's."""
        own = [self._full(name) for name in keys.message_keys(queue, uuid)]
        lease = f"lock:{self._full(keys.lease_name(queue, uuid))}"
        return [*own, lease, *self._task_keys(queue, task_name)]

    def _held_keys(self, message: Message) -> list[str]:
        """Keys that finishing ``message`` may touch, named by the options it carries: the
        unique key it holds (``release_unique`` in lib_finish.lua), and the completion callback its
        group submits when its ack counts the group down to 0 (``group_member_done``)."""
        carried = carried_options(message)
        names = self._limit_keys(message)
        if carried.get("unique"):
            names.append(self.unique_key(message.queue, carried["unique"]["key"]))
        if carried.get("group_callback"):
            queue, task_name, uuid = carried["group_callback"]
            names += [self._full(name) for name in keys.queue_keys(queue)]
            names += self._message_keys(queue, uuid, task_name)
            if not self.one_queue_per_call:
                names.append(self._full(keys.uuid_key(uuid)))
        return names

    def _limit_keys(self, message: Message) -> list[str]:
        """The limit sets ending ``message``'s lease may touch, named by the limits it carries
        (``limit_keys`` in lib_limits.lua): its key's holders and parked set, its task's rate,
        parked and ready sets, the queue's rechecks. Parked messages given back are found in
        data: the call leaves them to the next claim's sweep when it did not declare them."""
        limits = carried_limits(message)
        if limits is None or not (limits.concurrency or limits.rate):
            return []
        queue, task_name = message.queue, message.task_name
        ckey = limits.key if limits.concurrency else ""
        names = [
            keys.running_key(queue, task_name, ckey),
            keys.rate_key(queue, task_name),
            keys.task_parked_key(queue, task_name),
            keys.ready_key(queue, task_name),
            keys.rechecks_key(queue),
        ]
        if ckey:
            names.append(keys.parked_key(queue, task_name, ckey))
        return [self._full(name) for name in names]

    def _counted_keys(self, queue: str, now: int) -> list[str]:
        """Full names of the throughput hashes an attempt ending at ``now`` counts in."""
        return [self._full(name) for name in keys.throughput_keys(queue, now)]

    def _message_script(
        self,
        name: str,
        message: Message,
        *args: str | int | float,
        effects: Sequence[Effect] = (),
        counted: bool = False,
    ) -> ScriptCall:
        """A script call about one message (ARGV = prefix, now, queue, *args) declaring its
        keys, its effects' keys and, when it ``counted`` an attempt, the throughput hashes."""
        now = utcnow_timestamp_ms()
        queue = message.queue
        declared = self._message_keys(queue, message.uuid, message.task_name)
        declared += self._held_keys(message) + effect_keys(effects)
        if counted:
            declared += self._counted_keys(queue, now)
        return self._queue_script(name, queue, *args, declared=declared, now=now)

    def revocation_channel(self, queue: str) -> str:
        """Pub/sub channel announcing the uuid of every revoked message of ``queue`` (in the
        queue's Cluster slot, so the revoke script may publish on it, sharded or not)."""
        return self._full(keys.revocations_channel(queue))

    def unique_key(self, queue: str, key: str) -> str:
        """The full key of unique key ``key`` among ``queue``'s messages."""
        return self._full(keys.unique_key(queue, key))

    def lease_key(self, message: Message) -> str:
        """Redis key of the message's lease (python-redis-lock format: ``lock:{full name}``)."""
        return f"lock:{self._full(keys.lease_name(message.queue, message.uuid))}"

    @property
    def one_queue_per_call(self) -> bool:
        """Whether scripts may touch one queue only per call (Redis Cluster)."""
        if self._one_queue_per_call is None:
            self._one_queue_per_call = self.backend.is_cluster
        return self._one_queue_per_call

    def _slot_groups(self, queues: Sequence[str]) -> list[list[int]]:
        """Indexes of ``queues`` grouped so that one script call may take each group: all in
        one on a single server, by hash slot on a cluster (first appearance order)."""
        if not self.one_queue_per_call:
            return [list(range(len(queues)))] if queues else []
        groups: dict[int, list[int]] = {}
        for index, queue in enumerate(queues):
            groups.setdefault(keys.queue_slot(queue), []).append(index)
        return list(groups.values())

    # -- bodies ----------------------------------------------------------------------------

    def _encode_body(self, message: Message) -> str:
        """Serialize the message as stored (never with a lease), naming a field that fails."""
        return self._encode_data(message, message.data)

    def _encode_data(self, message: Message, data: dict[str, Any]) -> str:
        if data["linked_lock"] is not None:
            data["linked_lock"] = None  # ``data`` is a fresh dict: the message keeps its lease
        serializer = self.backend.serializer
        try:
            return str(serializer.forward(data))
        except TypeError as error:
            for field_name, value in data.items():
                try:
                    serializer.forward(value)
                except TypeError as field_error:
                    raise TypeError(
                        f"Message {message.uuid}: field {field_name!r} cannot be serialized "
                        f"by {serializer!r}: {field_error}"
                    ) from error
            raise

    def _decode_body(self, raw: str) -> Message:
        data = self.backend.serializer.reverse(raw)
        if not isinstance(data, dict):
            raise TypeError(f"the body is a {type(data).__name__}, not a dict of message fields")
        return Message(**data)

    # -- shared calls and reads ------------------------------------------------------------

    def _uuid_retention(
        self, message: Message, effects: Sequence[Effect], floor: int = 0
    ) -> RetainEffect:
        """What becomes of ``message``'s uuid record once it is finished: it lives as long as
        something of it can still be found (its dead letter for ``floor`` ms, the status and
        result its ``effects`` write), for good with a result kept for good, and is deleted
        when nothing is left, so finished messages cost no memory of their own."""
        key = self._full(keys.uuid_key(message.uuid))
        writes = [e for e in effects if isinstance(e, SetEffect) and not e.keep_ttl]
        if any(write.ttl is None for write in writes):
            return RetainEffect(key, None)
        return RetainEffect(key, max([floor, *(write.ttl or 0 for write in writes)]))

    def _retaining(
        self, message: Message, effects: Sequence[Effect], floor: int = 0
    ) -> tuple[list[Effect], list[Command]]:
        """``effects`` with the uuid record's retention among them, applied only if the
        operation succeeds (on a Cluster the record is in another slot: then the commands to
        send once it has succeeded)."""
        retention = self._uuid_retention(message, effects, floor)
        if not self.one_queue_per_call:
            return [*effects, retention], []
        return list(effects), list(effect_commands([retention]))

    def _uuid_record(self, message: Message, ttl: int) -> SetEffect:
        """Record where ``message`` is, for lookups by uuid alone, as long as it and its dead
        letter may live (idempotent)."""
        record = keys.uuid_record(message.queue, message.task_name, message.progenitor_uuid)
        key = self._full(keys.uuid_key(message.uuid))
        return SetEffect(key, record, ttl=ttl + (self.dlq_ttl or 0))

    def _recording(
        self, message: Message, effects: Sequence[Effect], ttl: int
    ) -> tuple[list[Effect], list[Command]]:
        """``effects`` with ``message``'s uuid record among them, written by the submit or
        requeue script only when it writes the message; on a Cluster (the record is in another
        slot) the command to send beside the script instead."""
        record = self._uuid_record(message, ttl)
        if not self.one_queue_per_call:
            return [*effects, record], []
        return list(effects), list(effect_commands([record]))

    def _fail_call(
        self,
        queue: str,
        uuid: str,
        task_name: str,
        owner: str,
        body: str,
        reason: str,
        effects: Sequence[Effect],
        run_ms: str = "-1",
        held: Sequence[str] = (),
    ) -> ScriptCall:
        """Dead-letter a message (with ``reason``) if ``owner`` may, counting it as failed
        after a run of ``run_ms`` (``-1``: unrun); see ``fail.lua``."""
        ttl = self.dlq_ttl or 0
        now = utcnow_timestamp_ms()
        declared = [*self._message_keys(queue, uuid, task_name), *held, *effect_keys(effects)]
        declared += self._counted_keys(queue, now)
        encoded = encode_effects(effects)
        return self._queue_script(
            "fail", queue, uuid, owner, body, reason, ttl, run_ms, *encoded,
            declared=declared, now=now,
        )  # fmt: skip
