"""``throughput()``: how many attempts ended per minute or hour, read back from the counters
the scripts that end an attempt keep (``count_outcome`` in ``lib_status.lua``).

One hash per queue per minute (kept 48 h) and per hour (kept 14 days), so a read is one
``HMGET`` (one task) or ``HGETALL`` (every task) per queue per point, pipelined: O(points),
never a SCAN. All queues are the registered ones and those live workers serve. A queue's total
is the sum of its tasks' fields, added up here: each ended attempt then costs the scripts two
``HINCRBY`` (minute and hour), not four (hashes written before kept a queue-total field too,
``outcome|bucket``: it is skipped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alsek.admin.inspect import InspectSteps
from alsek.admin.reading import server_ms
from alsek.admin.types import ThroughputPoint
from alsek.core.broker import keys
from alsek.core.steps.ops import Steps, batched

#: Points ``throughput()`` returns without ``since_ms``: the last hour, the last day.
DEFAULT_POINTS = {"minute": 60, "hour": 24}

#: Fields of a throughput hash, in the order ``_fields`` lists them.
_BUCKETS = (*(str(i) for i in range(len(keys.RUN_MS_BUCKETS) + 1)), keys.UNRUN_BUCKET)


#: Where each ``outcome|bucket`` goes in a reply, in the order ``_fields`` lists them.
_POSITION = {
    f"{o}|{b}": i
    for i, (o, b) in enumerate((o, b) for o in keys.THROUGHPUT_OUTCOMES for b in _BUCKETS)
}


def _fields(task: str) -> list[str]:
    """Every field of ``task`` in a throughput hash."""
    return [f"{pair}|{task}" for pair in _POSITION]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _every_task(fields: Any) -> list[int | None]:
    """An ``HGETALL`` reply summed over its tasks, laid out as an ``HMGET`` of ``_fields``."""
    counts: list[int | None] = [None] * len(_POSITION)
    for name, value in (fields or {}).items():
        parts = _text(name).split("|", 2)
        index = _POSITION.get("|".join(parts[:2]))
        if len(parts) == 3 and index is not None:
            counts[index] = (counts[index] or 0) + int(value)
    return counts


def _check(step: str, since_ms: int | None, queue: str | None, task: str | None) -> None:
    if step not in keys.THROUGHPUT_STEP_MS:
        raise ValueError(f"step must be 'minute' or 'hour', got {step!r}")
    if since_ms is not None and (
        isinstance(since_ms, bool) or not isinstance(since_ms, int) or since_ms < 0
    ):
        raise ValueError(f"since_ms must be ms since the epoch (an int >= 0), got {since_ms!r}")
    for name, value in (("queue", queue), ("task", task)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{name} must be a non-empty name or None, got {value!r}")


def point_starts(now_ms: int, step: str, since_ms: int | None) -> list[int]:
    """The starts of the steps from the one holding ``since_ms`` (default: the last
    ``DEFAULT_POINTS``; at most as far back as they are kept) to the current one."""
    length = keys.THROUGHPUT_STEP_MS[step]
    last = now_ms - now_ms % length
    if since_ms is None:
        first = last - (DEFAULT_POINTS[step] - 1) * length
    else:
        first = since_ms - since_ms % length
    oldest_kept = last - keys.THROUGHPUT_KEPT_MS[step] + length
    return list(range(max(first, oldest_kept), last + 1, length))


def sum_point(at_ms: int, replies: Sequence[Sequence[Any]]) -> ThroughputPoint:
    """One point from the ``HMGET`` replies (``_fields`` order) of every queue read."""
    width = len(_BUCKETS)
    totals = {outcome: [0] * width for outcome in keys.THROUGHPUT_OUTCOMES}
    for reply in replies:
        for index, value in enumerate(reply):
            if value is not None:
                totals[keys.THROUGHPUT_OUTCOMES[index // width]][index % width] += int(value)
    runs = [sum(totals[o][i] for o in keys.THROUGHPUT_OUTCOMES) for i in range(width - 1)]
    return ThroughputPoint(
        at_ms=at_ms,
        succeeded=sum(totals["s"]),
        failed=sum(totals["d"]) + sum(totals["x"]),
        retried=sum(totals["r"]),
        dead_lettered=sum(totals["d"]),
        run_ms_buckets=tuple(runs),
    )


class ThroughputSteps(InspectSteps):
    """The throughput history's read."""

    def _throughput_steps(
        self, queue: str | None, task: str | None, since_ms: int | None, step: str
    ) -> Steps[list[ThroughputPoint]]:
        _check(step, since_ms, queue, task)
        if queue is not None:
            [now_reply] = yield batched(("TIME",))
            now, queues = server_ms(now_reply), [queue]
        else:
            now, records = yield from self._worker_records_steps()
            served = {name for record in records for name in record.serves}
            queues = sorted(set((yield from self.broker._queues_steps())) | served)
        starts = point_starts(now, step, since_ms)
        read = ("HMGET", *_fields(task)) if task is not None else ("HGETALL",)
        reads = [
            (read[0], self._full(keys.throughput_key(q, step, at)), *read[1:])
            for at in starts
            for q in queues
        ]
        replies = (yield batched(*reads)) if reads else []
        if task is None:
            replies = [_every_task(reply) for reply in replies]
        count = len(queues)
        return [sum_point(at, replies[i * count : (i + 1) * count]) for i, at in enumerate(starts)]
