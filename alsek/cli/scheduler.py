"""``alsek scheduler PACKAGE``: run every trigger task of a package (cron, interval, date) in
one process, until SIGTERM or SIGINT.

Workers never schedule anything: trigger tasks fire only where their ``generate()`` is called,
and this command is the place to call it. Run two or more replicas for availability: each
tick still yields exactly one message, whichever replica fires it first (the per-tick marker
of ``alsek.core.task.triggers``). Sync trigger tasks fire from scheduler threads; async ones
on this process's event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import click

from alsek.cli.loading import importing
from alsek.cli.options import LOG_LEVELS
from alsek.core.task.triggers import TriggerTaskMixin
from alsek.exceptions import NoTasksFoundError, SchedulingError
from alsek.utils.logging import setup_logging
from alsek.utils.scanning import collect_async_tasks, collect_tasks
from alsek.utils.system import StopSignalListener

__all__ = ["scheduler"]

log = logging.getLogger(__name__)


def trigger_tasks(package: str) -> list[Any]:
    """The package's trigger tasks, sync and async, in name order.

    Raises:
        click.ClickException: the package cannot be imported, or holds no trigger task.
    """
    found: list[Any] = []
    for collect in (collect_tasks, collect_async_tasks):
        try:
            with importing(package):
                tasks = collect(package)
        except NoTasksFoundError:
            continue
        found += [task for task in tasks if isinstance(task, TriggerTaskMixin)]
    if not found:
        raise click.ClickException(
            f"{package!r} has no trigger tasks: give a task a trigger "
            "(task(broker, trigger=CronTrigger(...)))"
        )
    return sorted(found, key=lambda task: task.name)


async def _schedule(task: Any) -> bool:
    """Schedule ``task`` here (awaiting an async task's ``generate()``, so its scheduler runs
    on this loop); one the package scheduled itself, on import, is left to it."""
    try:
        generated = task.generate()
        if inspect.isawaitable(generated):
            await generated
    except SchedulingError:
        log.warning("Trigger task %r was already scheduled by its package", task.name)
        return False
    log.info("Scheduled %r: %s", task.name, task.trigger)
    return True


async def _serve(tasks: list[Any], stop: StopSignalListener) -> None:
    """Schedule every task, then wait for a stop signal and stop the schedules."""
    scheduled = [task for task in tasks if await _schedule(task)]
    log.info("Scheduler online: %d trigger task(s)", len(scheduled))
    try:
        await stop.async_wait(None)
    finally:
        for task in scheduled:
            task.shutdown()
        log.info("Scheduler stopped")


@click.command()
@click.argument("package")
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="INFO",
    show_default=True,
    help="Logging level.",
)
def scheduler(package: str, log_level: str) -> None:
    """Run PACKAGE's trigger tasks (cron, interval, date) until stopped; replicas may run side
    by side, and each tick still yields one message."""
    setup_logging(logging.getLevelName(log_level.upper().strip()))
    tasks = trigger_tasks(package)
    stop = StopSignalListener()
    asyncio.run(_serve(tasks, stop))
