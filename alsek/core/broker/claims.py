"""Claims and sweeps: which keys a claim declares, and the peeks that name them.

A claim leases messages found in data (the heads of ready sets), and its sweeps meet more
(due delayed messages, expired leases, parked messages given back). Every key a script
touches is declared in its KEYS (issue 13), so these scripts *peek ahead*: each reply also
carries the keys the next call will need (the next candidates of every task served, the
delayed messages due soon, whatever a sweep met undeclared), and the broker names them in its
next call of the same consumer and queues. A call that met work it could not do for want of
keys says so (``blocked``): when it leased nothing, it is made again at once with the keys it
asked for, a few times at most. An idle consumer's first claim is such a peek.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from alsek.core.broker import keys
from alsek.core.broker.effects import ClaimStatus, encode_claim_status, fill_template
from alsek.core.broker.registry import RegistrySteps
from alsek.core.message import Message
from alsek.core.steps.ops import ScriptCall, Steps, batched
from alsek.core.steps.outage import REDIS_OUTAGE_ERRORS
from alsek.exceptions import WorkerLostError
from alsek.utils.parsing import ExceptionDetails, get_exception_name
from alsek.utils.temporal import utcnow_timestamp_ms

log = logging.getLogger(__name__)

#: Calls of one claim (or sweep) at most: the first, and the ones made again at once because
#: the previous one was blocked for want of keys and leased nothing (keys found in a body a
#: call could not read are named one call later, so a message may need two peeks).
MAX_ROUNDS = 6
#: Marks a compact candidate among a claim's wanted keys, and separates its queue, task and
#: uuid (``want_candidate`` in claim.lua): a control character, so no key name starts with it
#: and no name holds it (``validate_key_part``).
CANDIDATE = "\0"
#: Peeks remembered per broker (one per consumer and group of queues): the oldest go first.
MAX_PEEKS = 1024


@dataclass(frozen=True)
class ClaimSource:
    """Where a claim looks: a queue, and optionally which of its tasks.

    With ``tasks``, only their messages are claimed (those of other tasks stay queued for the
    pools that serve them): drained in the given order when ``ordered``, else best priority
    first across them. Without ``tasks``, every task of the queue, best priority first.
    """

    queue: str
    tasks: tuple[str, ...] | None = None
    ordered: bool = True

    def __post_init__(self) -> None:
        if self.tasks is not None and not self.tasks:
            raise ValueError(
                f"ClaimSource({self.queue!r}) names no task: give task names, or None for all"
            )


class Claim(NamedTuple):
    """What one claim returned.

    ``messages`` are leased to the caller. ``next_due`` is the earliest time (ms, on this
    host's clock) at which a delayed message becomes ready, a lease expires or a full
    concurrency key with parked messages is looked at again in the queues looked at (now:
    the claim parked as many as it may, claim again; ``None``: nothing pending); Redis
    decides it by its own clock, and it is translated to this host's. ``rejected`` counts
    bodies that could not be decoded and went to the DLQ.
    """

    messages: list[Message]
    next_due: int | None
    rejected: int


class Wanted(NamedTuple):
    """The head of a peeking script's reply: its first value, whether it was blocked for want
    of keys, the keys its next call should declare, and the rest of the reply."""

    first: Any
    blocked: bool
    keys: tuple[str, ...]
    rest: list[Any]


def split_wanted(reply: list[Any]) -> Wanted:
    """Read ``with_wanted``'s reply (lib_keys.lua): first, blocked, count, keys, rest."""
    count = int(reply[2])
    return Wanted(reply[0], bool(int(reply[1])), tuple(reply[3 : 3 + count]), reply[3 + count :])


def _worker_lost_details() -> dict[str, Any]:
    return ExceptionDetails(
        name=get_exception_name(WorkerLostError),
        text="The worker running this message stopped renewing its lease (worker lost).",
        traceback=None,
    ).as_dict()


class _Progress(NamedTuple):
    """The rounds of one claim request answered so far, and what they leased."""

    request_id: str | None
    who: tuple[str, ...]
    round: int
    messages: list[Message]
    rejects: list[ScriptCall]


class ClaimSteps(RegistrySteps):
    """Claims and sweeps of a broker, with the peeks each consumer's next call declares."""

    _peek_memory: OrderedDict[tuple[str, ...], tuple[str, ...]] | None = None
    _progress_memory: dict[str, _Progress] | None = None
    #: Per (owner, queue), the request id of a claim that got no answer (see ``_pass_over``);
    #: set by the broker's ``__init__``.
    _passed_over: dict[tuple[str, str], str]

    @property
    def _claim_progress(self) -> dict[str, _Progress]:
        """Per consumer, the rounds of its claim in progress (see ``_claim_group_steps``)."""
        if self._progress_memory is None:
            self._progress_memory = {}
        return self._progress_memory

    # -- peeks -----------------------------------------------------------------------------

    def _peeked(self, who: tuple[str, ...]) -> tuple[str, ...]:
        """The keys the last call of ``who`` (an owner and its queues) wanted."""
        memory = self._peek_memory
        return memory.get(who, ()) if memory is not None else ()

    def _remember_peek(self, who: tuple[str, ...], wanted: tuple[str, ...]) -> None:
        if self._peek_memory is None:
            self._peek_memory = OrderedDict()
        memory = self._peek_memory
        memory.pop(who, None)
        memory[who] = wanted
        while len(memory) > MAX_PEEKS:
            memory.popitem(last=False)

    def _expand_peek(self, wanted: Sequence[str], status: ClaimStatus | None) -> tuple[str, ...]:
        """A claim's wanted keys, its compact candidates (``want_candidate`` in claim.lua)
        made full names, each name once."""
        names: dict[str, None] = {}
        for item in wanted:
            if item.startswith(CANDIDATE):
                queue, task, uuid = item[1:].split(CANDIDATE)
                names.update(dict.fromkeys(self._candidate_keys(queue, task, uuid, status)))
            else:
                names[item] = None
        return tuple(names)

    def _candidate_keys(
        self, queue: str, task: str, uuid: str, status: ClaimStatus | None
    ) -> list[str]:
        """The keys leasing a message touches (``candidate_keys`` in claim.lua): its body and
        lease, and its status and history when the claim writes them for its task."""
        body = self._full(keys.message_key(queue, uuid))
        names = [body, f"lock:{body}"]
        if status and status.key_template and (status.tasks is None or task in status.tasks):
            values = {"queue": queue, "task": task, "uuid": uuid}
            names.append(fill_template(status.key_template, values))
            if status.history_template:
                names.append(fill_template(status.history_template, values))
        return names

    def _sweep_keys(self, queues: Sequence[str]) -> list[str]:
        """The queues' own keys a claim or sweep touches, full names."""
        names = []
        for queue in queues:
            names += [self._full(name) for name in keys.queue_keys(queue)]
            names.append(self._full(keys.rechecks_key(queue)))
        return names

    # -- claim -----------------------------------------------------------------------------

    def _claim_steps(
        self,
        sources: Sequence[ClaimSource],
        n: int,
        owner_id: str,
        lease_ttl: int,
        status: ClaimStatus | None,
        request_id: str | None,
    ) -> Steps[Claim]:
        if n <= 0:
            raise ValueError(f"claim needs n >= 1, got {n}")
        if not sources:
            raise ValueError("claim needs at least one source queue")
        # One call for every queue on a single Redis; one per queue, in order, on a Cluster
        # (a script may touch one slot only). There, a queue whose node cannot serve now (a
        # failover, a slot on the move) is passed over, so the queues of the other nodes keep
        # flowing and what was claimed from them is never dropped; only when no queue could be
        # asked does the outage reach the caller.
        groups = [[source] for source in sources] if self.one_queue_per_call else [sources]
        messages: list[Message] = []
        dues: list[int] = []
        rejected = 0
        unavailable: list[Exception] = []
        for index, group in enumerate(groups):
            rid = f"{request_id}:{index}" if request_id and len(groups) > 1 else request_id
            rid = self._passed_over.pop((owner_id, group[0].queue), rid)
            try:
                due, claimed, rejects = yield from self._claim_group_steps(
                    group, n - len(messages), owner_id, lease_ttl, status, rid
                )
            except REDIS_OUTAGE_ERRORS as error:
                if len(groups) == 1:
                    raise
                log.debug("Passing over queue %r this time: %s", group[0].queue, error)
                self._pass_over(owner_id, group[0].queue, rid)
                unavailable.append(error)
                continue
            if rejects:
                yield batched(*rejects)
            messages += claimed
            rejected += len(rejects)
            if due >= 0:
                dues.append(utcnow_timestamp_ms() + due)
            if len(messages) >= n:
                break
        if len(unavailable) == len(groups):
            raise unavailable[0]
        return Claim(messages, min(dues) if dues else None, rejected)

    def _pass_over(self, owner_id: str, queue: str, rid: str | None) -> None:
        """Remember the request id of a claim on ``queue`` that got no answer: it may have
        leased messages all the same (its reply lost, or its replicas short), so the owner's
        next claim there re-sends it, and gets those messages (the claim's reply cache), or
        claims afresh if it never stood. A new id would leave them leased to nobody until
        their lease runs out."""
        if rid:
            self._passed_over[(owner_id, queue)] = rid

    def _claim_group_steps(
        self,
        sources: Sequence[ClaimSource],
        n: int,
        owner_id: str,
        lease_ttl: int,
        status: ClaimStatus | None,
        request_id: str | None,
    ) -> Steps[tuple[int, list[Message], list[ScriptCall]]]:
        """Calls for ``sources``, made again at once while one is blocked for want of keys and
        the batch is not full. A round after one that leased has a request id of its own (the
        script keeps one reply per consumer), and what the rounds leased is kept here until
        they are all answered:
        a claim retried after an outage (same request id) resumes at the round whose reply was
        lost, so nothing an earlier round leased is dropped."""
        who = (owner_id, *(source.queue for source in sources))
        progress = _Progress(request_id, who, 0, [], [])
        kept = self._claim_progress.pop(owner_id, None) if request_id else None
        if kept is not None and kept.request_id == request_id and kept.who == who:
            progress = kept
        due = -1
        while progress.round < MAX_ROUNDS and len(progress.messages) < n:
            peeked = self._peeked(who)
            rid = request_id
            taken = len(progress.messages) + len(progress.rejects)
            if request_id and taken:  # a round after one that leased
                rid = f"{request_id}#{taken}"
            wanted_n = n - len(progress.messages)
            request = self._claim_call(sources, wanted_n, owner_id, lease_ttl, status, rid, peeked)
            if request_id:
                self._claim_progress[owner_id] = progress
            [reply] = yield self._write(request)  # durable with wait_replicas
            wanted = split_wanted(reply)
            wanted = wanted._replace(keys=self._expand_peek(wanted.keys, status))
            self._remember_peek(who, wanted.keys)
            claimed, rejects = self._parse_claim(wanted.rest, status)
            progress = progress._replace(
                round=progress.round + 1,
                messages=progress.messages + claimed,
                rejects=progress.rejects + rejects,
            )
            due = int(wanted.first)
            if not wanted.blocked or set(wanted.keys) <= set(peeked):
                break
        self._claim_progress.pop(owner_id, None)
        return due, progress.messages, progress.rejects

    def _claim_call(
        self,
        sources: Sequence[ClaimSource],
        n: int,
        owner_id: str,
        lease_ttl: int,
        status: ClaimStatus | None,
        request_id: str | None,
        peeked: Sequence[str] = (),
    ) -> ScriptCall:
        args: list[str | int | float] = [n, lease_ttl, owner_id, request_id or ""]
        args += encode_claim_status(status)
        args.append(len(sources))
        for source in sources:
            if source.tasks is None:
                args += [source.queue, 0]
            else:
                count = len(source.tasks) if source.ordered else -len(source.tasks)
                args += [source.queue, count, *source.tasks]
        cache = self._full(keys.claim_reply_key(sources[0].queue, owner_id))
        declared = [cache, *self._sweep_keys([s.queue for s in sources]), *peeked]
        return self._script("claim", sources[0].queue, *args, declared=declared)

    def _parse_claim(
        self, rows: list[Any], status: ClaimStatus | None
    ) -> tuple[list[Message], list[ScriptCall]]:
        """Messages of a claim reply's rows, and DLQ calls for bodies that cannot be decoded
        (which replace the claim's status write, if any, with the status's rejected one)."""
        messages: list[Message] = []
        rejects: list[ScriptCall] = []
        for offset in range(0, len(rows), 6):
            queue, task_name, uuid, raw, lost, owner = rows[offset : offset + 6]
            try:
                message = self._decode_body(raw)
            except Exception as error:  # whatever the decoding failure, the body is unusable
                reason = f"Undecodable message body ({type(error).__name__}: {error})"
                log.error("Moving message %s of queue %r to the DLQ: %s", uuid, queue, reason)
                effects = status.rejected_effects(queue, task_name, uuid) if status else []
                call = self._fail_call(queue, uuid, task_name, owner, raw, reason, effects)
                rejects.append(call)
                continue
            message.linked_lock = {"name": keys.lease_name(queue, uuid), "owner_id": owner}
            if int(lost):
                message.update(
                    retries=message.retries + int(lost),
                    exception_details=_worker_lost_details(),
                    updated_at=utcnow_timestamp_ms(),
                )
            messages.append(message)
        return messages, rejects

    # -- sweeps ----------------------------------------------------------------------------

    def _reclaim_steps(self, queues: Sequence[str] | None) -> Steps[int]:
        names = list(queues) if queues is not None else (yield from self._queues_steps())
        if not names:
            return 0
        groups = [[names[i] for i in group] for group in self._slot_groups(names)]
        total = 0
        for _ in range(MAX_ROUNDS):
            calls = [self._reclaim_call(group) for group in groups]
            replies = yield batched(*calls)
            blocked = []
            for group, reply in zip(groups, replies):
                wanted = split_wanted(reply)
                total += int(wanted.first)
                if wanted.blocked and not set(wanted.keys) <= set(self._peeked(("", *group))):
                    blocked.append(group)
                self._remember_peek(("", *group), wanted.keys)
            if not blocked:
                break
            groups = blocked
        return total

    def _reclaim_call(self, queues: Sequence[str]) -> ScriptCall:
        declared = [*self._sweep_keys(queues), *self._peeked(("", *queues))]
        return self._script("reclaim", queues[0], *queues, declared=declared)

    def _expire_unserved_call(self, queue: str, *args: str | int | float) -> ScriptCall:
        """Dead-letter ``queue``'s messages no live worker serves (``expire_unserved.lua``),
        declaring the keys the previous call of it wanted: a message met for the first time
        waits for the next call (pools make it with each heartbeat)."""
        now = utcnow_timestamp_ms()
        declared = [*self._counted_keys(queue, now), *self._peeked(("expire", queue))]
        return self._queue_script("expire_unserved", queue, *args, declared=declared, now=now)

    def _expired_count(self, queue: str, reply: list[Any]) -> int:
        """How many messages an ``_expire_unserved_call`` dead-lettered (its wants kept)."""
        wanted = split_wanted(reply)
        self._remember_peek(("expire", queue), wanted.keys)
        return int(wanted.first)
