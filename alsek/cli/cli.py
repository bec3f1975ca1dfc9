"""The ``alsek`` command: start a worker pool over the tasks of a package, or operate.

    alsek thread-pool PACKAGE     threads inside elastic worker processes
    alsek process-pool PACKAGE    warm processes, one message at a time each
    alsek async-pool PACKAGE      asyncio tasks in one process
    alsek scheduler PACKAGE       the package's trigger tasks (``scheduler``)

A package that cannot be imported, or holds no task the pool can run, ``--queues`` naming a queue
none of its tasks uses, and a Redis that refuses the pool (credentials, rights, database) are
each reported in one line on stderr, and the command exits with status 1. A Redis that cannot be
reached is waited for (see ``PoolCore._reach_redis_steps``).
The operator's commands (``info``, ``queues``, ``workers``, ``message``, ``messages``, ``queue``,
``dlq``, ``revoke``, ``submit``) live in ``inspect`` and ``manage``, the web dashboard
(``dashboard``) in ``dashboard``; this module keeps the pool commands and puts them all together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from alsek._version import __version__
from alsek.cli import dashboard, inspect, manage, metrics
from alsek.cli.loading import importing
from alsek.cli.options import (
    LOG_LEVELS,
    common_options,
    constructor_default,
    kebab_option,
    pool_kwargs,
    pool_option,
)
from alsek.cli.scheduler import scheduler
from alsek.core.worker.asyncio import AsyncSingleProcessWorkerPool
from alsek.core.worker.sync import ProcessWorkerPool, ThreadWorkerPool
from alsek.exceptions import (
    AlsekError,
    MetricsUnavailableError,
    NoTasksFoundError,
    RedisAccessError,
)
from alsek.utils.logging import setup_logging
from alsek.utils.loops import LOOP_NAMES, check_loop_name, run_on_loop
from alsek.utils.scanning import collect_async_tasks, collect_tasks

__all__ = ["LOG_LEVELS", "main"]


def _apply_logging_level(log_level: str) -> None:
    """Log at ``log_level`` through the root logger, so that the tasks' own ``logging`` calls
    show beside alsek's, in one format, in every process of the pool."""
    setup_logging(logging.getLevelName(log_level.upper().strip()), root=True)


def _load(collect: Callable[[str], tuple[Any, ...]], package: str) -> tuple[Any, ...]:
    """Collect the package's tasks, turning any failure into a one-line error."""
    try:
        with importing(package):
            return collect(package)
    except NoTasksFoundError as error:
        hint = _other_kind_hint(collect, package)
        raise click.ClickException(f"{package!r}: {error}{hint}") from error


def _other_kind_names(collect: Callable[[str], tuple[Any, ...]], package: str) -> list[str]:
    """Names of the package's tasks of the other kind (sync or async), for hints."""
    other = collect_tasks if collect is collect_async_tasks else collect_async_tasks
    try:
        return sorted(task.name for task in other(package))
    except AlsekError:
        return []


def _other_kind_hint(collect: Callable[[str], tuple[Any, ...]], package: str) -> str:
    """When a package has no tasks for this command but has tasks of the other kind (sync or
    async), name them and the commands that serve them; else nothing."""
    if collect is collect_async_tasks:
        kind, commands = "sync", "thread-pool or process-pool"
    else:
        kind, commands = "async", "async-pool"
    names = _other_kind_names(collect, package)
    if not names:
        return ""
    return f"; it has {kind} tasks ({', '.join(names)}): serve them with {commands}"


@contextmanager
def _one_line(*errors: type[Exception]) -> Iterator[None]:
    """Report ``errors`` as one line on stderr (exit status 1) rather than a traceback."""
    try:
        yield
    except errors as error:
        raise click.ClickException(str(error)) from error


def _build(factory: Callable[..., Any], **kwargs: Any) -> Any:
    with _one_line(AlsekError, ValueError, TypeError):
        pool = factory(**kwargs)
    _check_queues(pool)
    return pool


def _check_queues(pool: Any) -> None:
    """Refuse ``--queues`` naming a queue that none of the pool's tasks declares: most likely a
    typo, which would leave the pool waiting on a queue nobody fills."""
    declared = sorted({task.queue for task in pool.tasks})
    unused = [queue for queue in pool.queues if queue not in declared]
    if unused:
        raise click.ClickException(
            f"--queues names {_quoted(unused)}, which none of the tasks this pool runs uses; "
            f"it could consume {_quoted(declared)}"
        )


def _quoted(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


@click.group()
@click.version_option(__version__)
def main() -> None:
    """alsek: a Redis-backed task queue. Start a worker pool over a package's tasks, or look
    at and manage queues, workers, messages and the dead-letter queue."""


@main.command()
@common_options(ThreadWorkerPool)
@pool_option(ThreadWorkerPool, "n_threads", type=int, help="Threads per process.")
@pool_option(
    ThreadWorkerPool,
    "n_processes",
    type=int,
    help="Most worker processes (default: CPUs minus one).",
)
@pool_option(
    ThreadWorkerPool, "n_process_floor", type=int, help="Worker processes kept even when idle."
)
@pool_option(
    ThreadWorkerPool,
    "slot_wait_interval",
    type=int,
    help="Longest wait (ms) for a free thread before looking again.",
)
@pool_option(
    ThreadWorkerPool,
    "complete_only_on_thread_exit",
    help="Count a stopped thread's slot as busy until the thread really ends.",
)
def thread_pool(
    package: str,
    n_threads: int,
    n_processes: int | None,
    n_process_floor: int,
    slot_wait_interval: int,
    complete_only_on_thread_exit: bool,
    log_level: str,
    **common: Any,
) -> None:
    """Run PACKAGE's thread tasks in threads inside elastic worker processes."""
    _apply_logging_level(log_level)
    pool = _build(
        ThreadWorkerPool,
        tasks=_load(collect_tasks, package),
        n_threads=n_threads,
        n_processes=n_processes,
        n_process_floor=n_process_floor,
        slot_wait_interval=slot_wait_interval,
        complete_only_on_thread_exit=complete_only_on_thread_exit,
        package_name=package,
        **pool_kwargs(**common),
    )
    with _one_line(RedisAccessError, MetricsUnavailableError):
        pool.run()


@main.command()
@common_options(ProcessWorkerPool)
@pool_option(
    ProcessWorkerPool,
    "n_processes",
    type=int,
    help="Warm processes, each running one message at a time (default: CPUs minus one).",
)
@kebab_option(
    "max_tasks_per_child",
    type=click.IntRange(min=1),
    default=constructor_default(ProcessWorkerPool, "max_tasks_per_child"),
    help="Replace a process by a fresh one after this many messages (for tasks that leak "
    "memory); 1 gives every message a process of its own. Default: no limit.",
)
@pool_option(
    ProcessWorkerPool,
    "prune_interval",
    type=int,
    help="Longest wait (ms) between checks for timed-out processes.",
)
@pool_option(
    ProcessWorkerPool,
    "slot_wait_interval",
    type=int,
    help="Longest wait (ms) for a free slot before looking again.",
)
def process_pool(
    package: str,
    n_processes: int | None,
    max_tasks_per_child: int | None,
    prune_interval: int,
    slot_wait_interval: int,
    log_level: str,
    **common: Any,
) -> None:
    """Run PACKAGE's process tasks in warm processes, one message at a time each."""
    _apply_logging_level(log_level)
    pool = _build(
        ProcessWorkerPool,
        tasks=_load(collect_tasks, package),
        n_processes=n_processes,
        max_tasks_per_child=max_tasks_per_child,
        prune_interval=prune_interval,
        slot_wait_interval=slot_wait_interval,
        **pool_kwargs(**common),
    )
    with _one_line(RedisAccessError, MetricsUnavailableError):
        pool.run()


@main.command()
@common_options(AsyncSingleProcessWorkerPool)
@pool_option(AsyncSingleProcessWorkerPool, "n_tasks", type=int, help="Messages running at once.")
@pool_option(
    AsyncSingleProcessWorkerPool,
    "prune_interval_seconds",
    type=float,
    help="Seconds between checks for timed-out tasks.",
)
@pool_option(
    AsyncSingleProcessWorkerPool,
    "slot_wait_interval",
    type=int,
    help="Longest wait (ms) for a free slot before looking again.",
)
@kebab_option(
    "loop",
    type=click.Choice(LOOP_NAMES, case_sensitive=False),
    default=constructor_default(AsyncSingleProcessWorkerPool, "loop"),
    show_default=True,
    help="Event loop: uvloop, asyncio's own, or auto (uvloop when installed).",
)
def async_pool(
    package: str,
    n_tasks: int,
    prune_interval_seconds: float,
    slot_wait_interval: int,
    loop: str,
    log_level: str,
    **common: Any,
) -> None:
    """Run PACKAGE's async tasks as asyncio tasks in one process."""
    _apply_logging_level(log_level)
    with _one_line(ValueError):
        loop = check_loop_name(loop.lower())
    tasks = _load(collect_async_tasks, package)

    async def serve() -> None:
        pool = _build(
            AsyncSingleProcessWorkerPool,
            tasks=tasks,
            n_tasks=n_tasks,
            prune_interval_seconds=prune_interval_seconds,
            slot_wait_interval=slot_wait_interval,
            loop=loop,
            **pool_kwargs(**common),
        )
        with _one_line(RedisAccessError, MetricsUnavailableError):
            await pool.run()

    run_on_loop(serve(), loop)


for _command in (
    inspect.info,
    inspect.queues,
    inspect.workers,
    inspect.message,
    inspect.messages,
    manage.queue,
    manage.dlq,
    manage.revoke,
    manage.submit,
    metrics.metrics,
    scheduler,
    dashboard.dashboard,
):
    main.add_command(_command)

if __name__ == "__main__":
    main()
