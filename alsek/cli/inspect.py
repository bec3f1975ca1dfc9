"""The commands that look: ``alsek info``, ``queues``, ``workers``, ``message``, ``messages``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from alsek.admin.types import LISTED_STATES, MessageInfo, QueueStats, WorkerInfo
from alsek.cli.connection import Connection, connected, connection_options
from alsek.cli.output import Block, Output, Table, Text, duration, moment

F = TypeVar("F", bound=Callable[..., Any])


def json_option(function: F) -> F:
    """``--json``: print JSON for scripts instead of tables."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of tables."
    )(function)


def package_argument(function: F) -> F:
    """An optional ``PACKAGE`` argument (same as ``--app``)."""
    return click.argument("package", required=False)(function)


def known_queue(connection: Connection, queue: str) -> str:
    """``queue`` if the namespace knows it (its registry), else a one-line error."""
    known = connection.wait(connection.admin.broker.queues())
    if queue not in known:
        listed = ", ".join(known) if known else "none yet"
        raise click.ClickException(f"Unknown queue {queue!r} (known queues: {listed})")
    return queue


# -- tables ---------------------------------------------------------------------------------------


def queues_table(queues: Sequence[QueueStats]) -> Table:
    """One row per queue, then one per task under it."""
    rows: list[list[str]] = []
    for stats in queues:
        rows.append(
            [
                stats.queue,
                str(stats.ready),
                str(stats.delayed),
                str(stats.running),
                str(stats.dead),
                "paused" if stats.paused else "",
                duration(stats.oldest_ready_ms),
            ]
        )
        for task in stats.tasks:
            served = "" if task.served else "  (no worker serves it)"
            rows.append(
                [
                    f"  {task.task}{served}",
                    str(task.ready),
                    str(task.delayed),
                    str(task.running),
                    str(task.dead),
                    "",
                    "",
                ]
            )
    headers = ["queue / task", "ready", "delayed", "running", "dead", "paused", "oldest"]
    return Table("Queues", headers, rows, empty="(no queue yet)")


def workers_table(workers: Sequence[WorkerInfo]) -> Table:
    """One row per worker pool."""
    rows = [
        [
            worker.id,
            worker.kind,
            f"{worker.busy}/{worker.slots}",
            ",".join(worker.queues),
            worker.state if worker.alive else "dead?",
            moment(worker.started_at),
            moment(worker.last_beat_at),
        ]
        for worker in workers
    ]
    headers = ["worker", "kind", "busy", "queues", "state", "started", "last beat"]
    return Table("Workers", headers, rows, empty="(no live worker)")


def messages_table(messages: Sequence[MessageInfo], title: str) -> Table:
    """One row per message of a listing."""
    rows = []
    for info in messages:
        data = info.data or {}
        error = f"{info.error.type}: {info.error.message or ''}".strip() if info.error else ""
        rows.append(
            [
                info.uuid,
                info.task,
                str(data.get("priority", "")),
                str(data.get("retries", "")),
                moment(data.get("ready_at")),
                error[:60],
            ]
        )
    headers = ["uuid", "task", "priority", "retries", "ready at", "error"]
    return Table(title, headers, rows, empty="(no message)")


def message_blocks(info: MessageInfo) -> list[Block]:
    """A message: what it is, its status timeline, then its result or its error."""
    data = info.data or {}
    facts = [
        f"uuid      {info.uuid}",
        f"queue     {info.queue}",
        f"task      {info.task}",
        f"state     {info.state}",
    ]
    if data:
        facts += [
            f"args      {data.get('args')!r}",
            f"kwargs    {data.get('kwargs')!r}",
            f"priority  {data.get('priority')}   retries {data.get('retries')}",
            f"created   {moment(data.get('created_at'))}   ready at {moment(data.get('ready_at'))}",
        ]
    blocks: list[Block] = [Text(facts, title=f"Message {info.uuid}")]
    history = info.history or ([info.status] if info.status else [])
    first = history[0].at if history and history[0].at else None
    timeline = [
        [
            moment(update.at),
            f"+{duration(update.at - first)}" if update.at and first else "",
            update.value.name,
            "" if update.details is None else str(update.details)[:80],
        ]
        for update in history
    ]
    blocks.append(Table("Status history", ["at", "after", "status", "details"], timeline))
    if info.error is not None:
        lines = [f"{info.error.type}: {info.error.message or ''}"]
        if info.error.traceback:
            lines += ["", *info.error.traceback.rstrip().splitlines()]
        blocks.append(Text(lines, title="Error"))
    elif info.state == "done":
        blocks.append(Text([repr(info.result)], title="Result"))
    return blocks


# -- commands ------------------------------------------------------------------------------------


@click.command()
@package_argument
@connection_options
@json_option
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    help="Refresh in place every SECONDS until Ctrl-C.",
    metavar="SECONDS",
)
def info(
    package: str | None,
    app: str | None,
    url: str | None,
    namespace: str | None,
    as_json: bool,
    interval: float | None,
) -> None:
    """Queues (ready, delayed, running, dead, paused, oldest) and workers (busy/slots)."""
    output = Output(as_json)
    with connected(package or app, url, namespace) as connection:

        def payload() -> dict[str, Any]:
            return {
                "queues": [q.as_dict() for q in connection.call("queues")],
                "workers": [w.as_dict() for w in connection.call("workers")],
            }

        def build() -> list[Block]:
            return [
                queues_table(connection.call("queues")),
                workers_table(connection.call("workers")),
            ]

        if interval:
            output.refresh(interval, build, payload)
        elif as_json:
            output.json(payload())
        else:
            output.show(build())


@click.command()
@package_argument
@connection_options
@json_option
def queues(
    package: str | None, app: str | None, url: str | None, namespace: str | None, as_json: bool
) -> None:
    """Every queue's counts, and each of its tasks' (with whether a live worker serves it)."""
    output = Output(as_json)
    with connected(package or app, url, namespace) as connection:
        stats = connection.call("queues")
        if as_json:
            output.json([q.as_dict() for q in stats])
        else:
            output.show([queues_table(stats)])


@click.command()
@package_argument
@connection_options
@json_option
def workers(
    package: str | None, app: str | None, url: str | None, namespace: str | None, as_json: bool
) -> None:
    """The live worker pools: kind, busy/slots, queues, state and last heartbeat."""
    output = Output(as_json)
    with connected(package or app, url, namespace) as connection:
        found = connection.call("workers")
        if as_json:
            output.json([w.as_dict() for w in found])
        else:
            output.show([workers_table(found)])


@click.command()
@click.argument("uuid")
@connection_options
@json_option
def message(
    uuid: str, app: str | None, url: str | None, namespace: str | None, as_json: bool
) -> None:
    """One message by UUID: where it is, its status timeline, its result or traceback."""
    output = Output(as_json)
    with connected(app, url, namespace) as connection:
        found = connection.call("message", uuid)
        if found is None:
            raise click.ClickException(f"No message with uuid {uuid!r} (unknown, or expired)")
        if as_json:
            output.json(found.as_dict())
        else:
            output.show(message_blocks(found))


@click.command()
@click.argument("queue")
@click.option(
    "--state",
    type=click.Choice(LISTED_STATES),
    default="ready",
    show_default=True,
    help="Which messages: ready (claim order), delayed (by ready time), running (by lease "
    "expiry) or dead (by failure time).",
)
@click.option("--task", help="Only this task's messages.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Most messages shown.",
)
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Messages skipped first.",
)
@connection_options
@json_option
def messages(
    queue: str,
    state: str,
    task: str | None,
    limit: int,
    offset: int,
    app: str | None,
    url: str | None,
    namespace: str | None,
    as_json: bool,
) -> None:
    """A page of QUEUE's messages in one state."""
    output = Output(as_json)
    with connected(app, url, namespace) as connection:
        known_queue(connection, queue)
        found = connection.call(
            "messages", queue, state=state, task=task, offset=offset, limit=limit
        )
        if as_json:
            output.json([m.as_dict() for m in found])
        else:
            output.show([messages_table(found, f"{queue}: {state} messages")])
