"""Choosing what a pool serves: its tasks, its broker, and the queues it consumes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Literal

from alsek.core.broker.effects import ClaimStatus
from alsek.exceptions import MultipleBrokersError, NoTasksFoundError, TaskNameCollisionError
from alsek.utils.sorting import dict_sort


def filter_tasks_of_kind(
    tasks: Sequence[Any], mechanism: str, kind: Literal["sync", "async"]
) -> list[Any]:
    """The tasks of ``kind`` with ``mechanism``; a task of the other kind is a clear error."""
    if not tasks:
        raise NoTasksFoundError("No tasks found")
    wrong_kind = [t.name for t in tasks if getattr(type(t), "_alsek_task_kind", None) != kind]
    if wrong_kind:
        other = "async" if kind == "sync" else "sync"
        pool = "an async pool" if kind == "async" else "a thread or process pool"
        raise NoTasksFoundError(f"{pool} cannot run {other} tasks: {', '.join(sorted(wrong_kind))}")
    kept = [t for t in tasks if t.mechanism == mechanism]
    if not kept:
        raise NoTasksFoundError(f"No tasks found with mechanism '{mechanism}'.")
    names = [t.name for t in kept]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise TaskNameCollisionError(f"Several tasks are named {', '.join(duplicated)}")
    return kept


def filter_tasks(tasks: Sequence[Any], mechanism: str) -> list[Any]:
    """The sync tasks with ``mechanism``; an async task among them is a clear error."""
    return filter_tasks_of_kind(tasks, mechanism, "sync")


def filter_async_tasks(tasks: Sequence[Any], mechanism: str) -> list[Any]:
    """The async tasks with ``mechanism``; a sync task among them is a clear error."""
    return filter_tasks_of_kind(tasks, mechanism, "async")


def _extract(tasks: Iterable[Any]) -> Any:
    brokers = {id(t.broker): t.broker for t in tasks}
    if not brokers:
        raise NoTasksFoundError("No tasks found")
    if len(brokers) > 1:
        raise MultipleBrokersError("Multiple brokers used")
    return next(iter(brokers.values()))


def extract_broker(tasks: Iterable[Any]) -> Any:
    """The one broker the tasks share."""
    return _extract(tasks)


def extract_async_broker(tasks: Iterable[Any]) -> Any:
    """The one async broker the tasks share."""
    return _extract(tasks)


def _gather_task_names(tasks: Iterable[Any]) -> dict[str, list[str]]:
    """Queue name → sorted task names (for the boot log)."""
    output: dict[str, list[str]] = {}
    for task in tasks:
        output.setdefault(task.queue, []).append(task.name)
    return {queue: sorted(names) for queue, names in dict_sort(output).items()}


def derive_consumer_subset(
    tasks: Sequence[Any], queues: list[str] | None, task_specific_mode: bool
) -> dict[str, list[str]] | list[str]:
    """The consumer subset: the queues (or queue → tasks) that ``tasks`` declare.

    ``queues`` restricts and orders them; without ``task_specific_mode`` a given ``queues``
    list is used as is.
    """
    if queues is not None and len(set(queues)) != len(queues):
        raise ValueError(f"Duplicate queues: {queues}")
    if queues and not task_specific_mode:
        return list(queues)
    by_queue = _gather_task_names(tasks)
    if queues:
        by_queue = {q: names for q, names in by_queue.items() if q in queues}
        by_queue = dict_sort(by_queue, key=queues.index)
    if not by_queue:
        raise NoTasksFoundError(f"None of the tasks uses the queues {queues}")
    if task_specific_mode:
        return by_queue
    return sorted(by_queue)


def derive_async_consumer_subset(
    tasks: Sequence[Any], queues: list[str] | None, task_specific_mode: bool
) -> dict[str, list[str]] | list[str]:
    """Async twin of ``derive_consumer_subset`` (same rules)."""
    return derive_consumer_subset(tasks, queues, task_specific_mode)


def merged_claim_status(tasks: Iterable[Any]) -> tuple[ClaimStatus | None, set[str]]:
    """One RUNNING claim status covering as many tasks as possible, and the tasks it covers.

    Tasks whose tracker writes elsewhere (another namespace or server) are left out; their
    futures record RUNNING themselves.
    """
    merged: ClaimStatus | None = None
    covered: set[str] = set()
    for task in tasks:
        status = task.running_claim_status()
        if status is None:
            continue
        if merged is None:
            merged = status
        elif (status.key_template, status.channel_template, status.payload, status.ttl) != (
            merged.key_template,
            merged.channel_template,
            merged.payload,
            merged.ttl,
        ):
            continue
        covered.add(task.name)
    if merged is not None:
        merged = replace(merged, tasks=frozenset(covered))
    return merged, covered
