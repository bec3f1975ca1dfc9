"""Writes that ride along with a broker operation, in the same round trip.

The status tracker and the result store (layers above the broker) describe what they want written
as effects; the broker's script applies them only when its own operation succeeds. Keys are full
Redis keys (already namespaced by whoever built them); values are already serialized.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from alsek.utils.temporal import utcnow_timestamp_ms


@dataclass(frozen=True)
class SetEffect:
    """``SET key value``: with ``PX ttl`` (ms) when ``ttl`` is set, ``KEEPTTL`` when ``keep_ttl``,
    ``NX`` when ``nx`` (an existing value is then kept, and the operation still succeeds)."""

    key: str
    value: str
    ttl: int | None = None
    keep_ttl: bool = False
    nx: bool = False


@dataclass(frozen=True)
class PublishEffect:
    """``PUBLISH channel payload``."""

    channel: str
    payload: str


@dataclass(frozen=True)
class IndexAddEffect:
    """``ZADD key score member``: keep an index (e.g. of live statuses) in step.

    With ``ttl`` (ms), the index key lives at least that long after this write.
    """

    key: str
    score: int | float
    member: str
    ttl: int | None = None


@dataclass(frozen=True)
class IndexRemoveEffect:
    """``ZREM key member``."""

    key: str
    member: str


@dataclass(frozen=True)
class DeleteEffect:
    """``DEL key``: e.g. a failure record that no longer holds once a message is requeued."""

    key: str


@dataclass(frozen=True)
class HistoryEffect:
    """Append ``value`` to the list ``key`` as ``"<ms> <value>"`` (the time of the write: the
    server's inside a broker script, the caller's when sent alone), keeping the last
    ``max_length`` items; with ``ttl`` (ms) the list expires that long after this write."""

    key: str
    value: str
    max_length: int
    ttl: int | None = None


@dataclass(frozen=True)
class RetainEffect:
    """Keep ``key`` ``ttl`` more ms (``PEXPIRE``), for good (``None``: ``PERSIST``), or not at
    all (0: ``DEL``)."""

    key: str
    ttl: int | None


@dataclass(frozen=True)
class GroupMemberDoneEffect:
    """A member of the group counted at ``key`` succeeded: count it down; the ack that brings
    the count to 0 submits the group's completion callback (``group_member_done`` in
    lib_finish.lua). Only a broker script applies it: the count and the submit must be one
    atomic step."""

    key: str


@dataclass(frozen=True)
class UniqueEffect:
    """The submitted message ``uuid`` of ``queue`` holds unique key ``key`` (``mode``:
    ``simple``, ``throttle`` or ``debounce``; ``ttl`` ms, 0: the message's lifetime). Read by
    the submit script before it writes the message (``unique_yield`` in lib_effects.lua); a debounce
    removes a waiting holder with its status (``status_template``, ``index_template``: full
    names with ``<queue>``, ``<task>``, ``<uuid>``; ``""``: none)."""

    key: str
    uuid: str
    queue: str
    ttl: int
    mode: str
    status_template: str = ""
    index_template: str = ""


@dataclass(frozen=True)
class LimitEffect:
    """The submitted message ``uuid`` of ``queue`` carries its task's limits, read by the claim
    script (``carry_limits`` in lib_limits.lua): at most ``concurrency`` running at once per
    ``key``, and ``rate`` claims per ``window_ms`` (0: no limit of that kind). Only a broker
    script applies it."""

    queue: str
    uuid: str
    concurrency: int
    key: str
    rate: int
    window_ms: int


Effect = (
    SetEffect
    | PublishEffect
    | IndexAddEffect
    | IndexRemoveEffect
    | DeleteEffect
    | HistoryEffect
    | RetainEffect
    | GroupMemberDoneEffect
    | UniqueEffect
    | LimitEffect
)


@dataclass(frozen=True)
class ClaimStatus:
    """A status written for every message a claim takes (RUNNING, typically).

    ``key_template`` and ``channel_template`` are full names with the placeholders ``<queue>``,
    ``<task>`` and ``<uuid>``; ``tasks`` limits it to those task names (``None``: every task).
    ``ttl`` is in ms; 0 writes the status without expiry.

    A claimed message whose body cannot be decoded goes to the dead-letter queue instead of
    running: ``rejected_payload`` (FAILED, typically) then replaces the status the claim wrote,
    and its entry ``<task>:<uuid>`` leaves the live-status index ``index_template``.

    ``history_template`` (a full name with the same placeholders) is the status history list
    the claim appends to, keeping its last ``history_length`` items (``""``: no history).
    ``unserved_payload`` (FAILED, typically) is what pools write for a message they
    dead-letter because no live worker serves its task (``unknown_task_ttl``).
    """

    key_template: str
    channel_template: str
    payload: str
    ttl: int
    tasks: frozenset[str] | None = None
    rejected_payload: str = ""
    index_template: str = ""
    history_template: str = ""
    history_length: int = 0
    unserved_payload: str = ""

    def rejected_effects(self, queue: str, task: str, uuid: str) -> list[Effect]:
        """What dead-lettering an undecodable claimed message records (nothing if untracked)."""
        if not self.rejected_payload or (self.tasks is not None and task not in self.tasks):
            return []

        names = {"queue": queue, "task": task, "uuid": uuid}

        def fill(template: str) -> str:
            return fill_template(template, names)

        effects: list[Effect] = [
            SetEffect(fill(self.key_template), self.rejected_payload, ttl=self.ttl or None),
            PublishEffect(fill(self.channel_template), self.rejected_payload),
        ]
        if self.index_template:
            effects.append(IndexRemoveEffect(fill(self.index_template), f"{task}:{uuid}"))
        if self.history_template:
            history = fill(self.history_template)
            length, ttl = self.history_length, self.ttl or None
            effects.append(HistoryEffect(history, self.rejected_payload, length, ttl))
        return effects


_MARKER = re.compile(r"<([A-Za-z]+)>")


def fill_template(template: str, names: dict[str, str]) -> str:
    """Replace the ``<name>`` markers of ``template`` in one pass (as ``fill`` in lib_status.lua): a
    value is never searched for markers itself."""
    return _MARKER.sub(lambda match: names.get(match.group(1), match.group(0)), template)


def encode_effects(effects: Iterable[Effect]) -> list[str | int | float]:
    """Flatten effects into the ARGV tail every script reads (``apply_effects`` in
    lib_effects.lua)."""
    encoded: list[str | int | float] = []
    count = 0
    for effect in effects:
        count += 1
        if isinstance(effect, SetEffect):
            ttl = -1 if effect.keep_ttl else (effect.ttl or 0)
            encoded += ["S", effect.key, effect.value, ttl, "1" if effect.nx else "0"]
        elif isinstance(effect, PublishEffect):
            encoded += ["P", effect.channel, effect.payload]
        elif isinstance(effect, IndexAddEffect):
            encoded += ["Z", effect.key, effect.score, effect.member, effect.ttl or 0]
        elif isinstance(effect, LimitEffect):
            encoded += ["L", effect.queue, effect.uuid, effect.concurrency, effect.key]
            encoded += [effect.rate, effect.window_ms]
        elif isinstance(effect, IndexRemoveEffect):
            encoded += ["R", effect.key, effect.member]
        elif isinstance(effect, HistoryEffect):
            encoded += ["H", effect.key, effect.value, effect.max_length, effect.ttl or 0]
        elif isinstance(effect, RetainEffect):
            encoded += ["K", effect.key, -1 if effect.ttl is None else effect.ttl]
        elif isinstance(effect, GroupMemberDoneEffect):
            encoded += ["G", effect.key]
        elif isinstance(effect, UniqueEffect):
            encoded += ["U", effect.key, effect.uuid, effect.queue, effect.ttl, effect.mode]
            encoded += [effect.status_template, effect.index_template]
        else:
            encoded += ["D", effect.key]
    return [count, *encoded]


def effect_keys(effects: Iterable[Effect]) -> list[str]:
    """The keys ``effects`` touch (publishes name a channel, no key), for the KEYS of the
    script that applies them. A group's count-down also reads its callback (``:callback``);
    the callback message it may submit is not named here (see docs/redis-layout.md)."""
    names: list[str] = []
    for effect in effects:
        if isinstance(effect, (PublishEffect, LimitEffect)):
            continue  # a channel, no key; the message's own hash, declared with the message
        names.append(effect.key)
        if isinstance(effect, GroupMemberDoneEffect):
            names.append(f"{effect.key}:callback")
    return names


def encode_claim_status(status: ClaimStatus | None) -> list[str | int]:
    """ARGV slice describing the per-claim status write (empty template: none)."""
    if status is None:
        return ["", "", "", 0, "", 0, -1]
    tasks: Sequence[str] = sorted(status.tasks) if status.tasks is not None else ()
    n_tracked = len(tasks) if status.tasks is not None else -1
    return [
        status.key_template,
        status.channel_template,
        status.payload,
        status.ttl,
        status.history_template,
        status.history_length,
        n_tracked,
        *tasks,
    ]


def effect_commands(effects: Iterable[Effect]) -> tuple[tuple[Any, ...], ...]:
    """The Redis commands that apply ``effects`` outside a broker operation.

    Same meaning as the broker's ``apply_effects`` (lib_effects.lua), so a write described once
    can ride with a broker operation or be sent alone.
    """
    commands: list[tuple[Any, ...]] = []
    for effect in effects:
        if isinstance(effect, SetEffect):
            command: tuple[Any, ...] = ("SET", effect.key, effect.value)
            if effect.keep_ttl:
                command += ("KEEPTTL",)
            elif effect.ttl:
                command += ("PX", effect.ttl)
            commands.append(command + (("NX",) if effect.nx else ()))
        elif isinstance(effect, PublishEffect):
            commands.append(("PUBLISH", effect.channel, effect.payload))
        elif isinstance(effect, IndexAddEffect):
            commands.append(("ZADD", effect.key, effect.score, effect.member))
            if effect.ttl:
                commands.append(("PEXPIRE", effect.key, effect.ttl))
        elif isinstance(effect, IndexRemoveEffect):
            commands.append(("ZREM", effect.key, effect.member))
        elif isinstance(effect, DeleteEffect):
            commands.append(("DEL", effect.key))
        elif isinstance(effect, HistoryEffect):
            commands.append(("RPUSH", effect.key, f"{utcnow_timestamp_ms()} {effect.value}"))
            commands.append(("LTRIM", effect.key, -effect.max_length, -1))
            if effect.ttl:
                commands.append(("PEXPIRE", effect.key, effect.ttl))
        elif isinstance(effect, RetainEffect):
            if effect.ttl is None:
                commands.append(("PERSIST", effect.key))
            elif effect.ttl > 0:
                commands.append(("PEXPIRE", effect.key, effect.ttl))
            else:
                commands.append(("DEL", effect.key))
        else:
            raise TypeError(f"Unknown effect {effect!r}")
    return tuple(commands)
