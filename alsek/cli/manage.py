"""The commands that change things: ``alsek queue pause|resume|purge``, ``alsek dlq
list|requeue|purge``, ``alsek revoke`` and ``alsek submit``.

Destructive commands ask for confirmation when run on a terminal, unless ``--yes``; counts
print as ``{"count": N}`` with ``--json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from alsek.admin.types import PURGEABLE_STATES
from alsek.cli.connection import Connection, connected, connection_options
from alsek.cli.inspect import json_option, known_queue, messages_table
from alsek.cli.output import Output
from alsek.exceptions import AlsekError

F = TypeVar("F", bound=Callable[..., Any])


def yes_option(function: F) -> F:
    """``--yes``: do not ask for confirmation."""
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(function)


def on_terminal() -> bool:
    """Whether a person can answer (stdin is a terminal); scripts are not asked."""
    return sys.stdin.isatty()


def confirm(question: str, yes: bool) -> None:
    """Ask ``question`` on a terminal (abort on no), unless ``yes`` or not on a terminal."""
    if not yes and on_terminal():
        click.confirm(question, abort=True)


def report_count(output: Output, count: int, what: str) -> None:
    """``{"count": N}`` with ``--json``, else a line saying what was done."""
    if output.as_json:
        output.json({"count": count})
    else:
        click.echo(f"{count} {what}")


# -- queues ---------------------------------------------------------------------------------------


@click.group()
def queue() -> None:
    """Pause, resume or purge a queue."""


def _set_paused(
    name: str, paused: bool, app: str | None, url: str | None, namespace: str | None, as_json: bool
) -> None:
    """Pause or resume QUEUE, then say so (one line, or JSON)."""
    with connected(app, url, namespace) as connection:
        connection.call("pause" if paused else "resume", known_queue(connection, name))
    said = "Paused" if paused else "Resumed"
    _say(Output(as_json), {"queue": name, "paused": paused}, f"{said} {name!r}")


@queue.command()
@click.argument("name", metavar="QUEUE")
@connection_options
@json_option
def pause(
    name: str, app: str | None, url: str | None, namespace: str | None, as_json: bool
) -> None:
    """Stop every pool claiming from QUEUE (it still accepts messages)."""
    _set_paused(name, True, app, url, namespace, as_json)


@queue.command()
@click.argument("name", metavar="QUEUE")
@connection_options
@json_option
def resume(
    name: str, app: str | None, url: str | None, namespace: str | None, as_json: bool
) -> None:
    """Let pools claim from QUEUE again (idle pools wake at once)."""
    _set_paused(name, False, app, url, namespace, as_json)


@queue.command("purge")
@click.argument("name", metavar="QUEUE")
@click.option(
    "--state",
    type=click.Choice(PURGEABLE_STATES),
    default="ready",
    show_default=True,
    help="Which waiting messages to delete (all: ready and delayed; running ones finish).",
)
@yes_option
@connection_options
@json_option
def purge_queue(
    name: str,
    state: str,
    yes: bool,
    app: str | None,
    url: str | None,
    namespace: str | None,
    as_json: bool,
) -> None:
    """Delete QUEUE's waiting messages."""
    output = Output(as_json)
    with connected(app, url, namespace) as connection:
        known_queue(connection, name)
        confirm(f"Delete the {state} messages of queue {name!r}?", yes)
        count = connection.call("purge", name, state=state)
    report_count(output, count, f"{state} messages deleted from {name!r}")


def _say(output: Output, payload: dict[str, Any], text: str) -> None:
    if output.as_json:
        output.json(payload)
    else:
        click.echo(text)


# -- the dead-letter queue -------------------------------------------------------------------


def dead_filters(function: F) -> F:
    """``--queue`` and ``--task``: which dead letters."""
    function = click.option("--task", help="Only this task's dead letters.")(function)
    return click.option("--queue", "queue_name", help="Only this queue's dead letters.")(function)


def _selection(
    connection: Connection, queue_name: str | None, uuids: tuple[str, ...], every: bool
) -> list[str] | None:
    if queue_name is not None:
        known_queue(connection, queue_name)
    if uuids and every:
        raise click.UsageError("Give UUIDs or --all, not both")
    if not uuids and not every:
        raise click.UsageError("Name the dead letters (UUID...) or pass --all")
    return list(uuids) if uuids else None


@click.group()
def dlq() -> None:
    """List, requeue or purge dead-lettered messages."""


@dlq.command("list")
@dead_filters
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Most shown."
)
@connection_options
@json_option
def list_dead(
    queue_name: str | None,
    task: str | None,
    limit: int,
    app: str | None,
    url: str | None,
    namespace: str | None,
    as_json: bool,
) -> None:
    """Dead letters, oldest failure first."""
    output = Output(as_json)
    with connected(app, url, namespace) as connection:
        if queue_name is not None:
            known_queue(connection, queue_name)
        found = connection.call("dead", queue_name, task=task, limit=limit)
    if as_json:
        output.json([m.as_dict() for m in found])
    else:
        output.show([messages_table(found, "Dead letters")])


def dead_selection(function: F) -> F:
    """``[UUID]...``, the filters, ``--all``, ``--yes`` and the connection options: which dead
    letters a DLQ action takes."""
    for option in reversed(
        [
            click.argument("uuids", nargs=-1, metavar="[UUID]..."),
            dead_filters,
            click.option(
                "--all", "every", is_flag=True, help="Every dead letter matching the filters."
            ),
            yes_option,
            connection_options,
            json_option,
        ]
    ):
        function = option(function)
    return function


def act_on_dead(action: str, done: str, ask_always: bool, selection: dict[str, Any]) -> None:
    """Run ``admin.<action>`` on the selected dead letters (asking first, on a terminal, for
    every matching one, or always with ``ask_always``) and report the count."""
    output = Output(selection["as_json"])
    with connected(selection["app"], selection["url"], selection["namespace"]) as connection:
        queue_name = selection["queue_name"]
        chosen = _selection(connection, queue_name, selection["uuids"], selection["every"])
        if chosen is None or ask_always:
            which = "every matching" if chosen is None else str(len(chosen))
            confirm(
                f"{action.split('_')[0].capitalize()} {which} dead letter(s)?", selection["yes"]
            )
        count = connection.call(action, queue_name, task=selection["task"], uuids=chosen)
    report_count(output, count, done)


@dlq.command()
@dead_selection
def requeue(**selection: Any) -> None:
    """Put dead letters back in their queues, retries reset."""
    act_on_dead("requeue_dead", "dead letters requeued", False, selection)


@dlq.command("purge")
@dead_selection
def purge_dead(**selection: Any) -> None:
    """Delete dead letters for good."""
    act_on_dead("purge_dead", "dead letters deleted", True, selection)


# -- one message -----------------------------------------------------------------------------


@click.command()
@click.argument("uuid")
@yes_option
@connection_options
@json_option
def revoke(
    uuid: str, yes: bool, app: str | None, url: str | None, namespace: str | None, as_json: bool
) -> None:
    """Revoke a message: never run it again; stop it if it runs (it goes to the DLQ)."""
    output = Output(as_json)
    with connected(app, url, namespace) as connection:
        confirm(f"Revoke message {uuid}?", yes)
        if not connection.call("revoke", uuid):
            raise click.ClickException(f"No message with uuid {uuid!r} is queued or running")
    _say(output, {"uuid": uuid, "revoked": True}, f"Revoked {uuid}")


def _json_value(option: str, text: str | None, kind: type) -> Any:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not valid JSON ({error})", param_hint=option) from error
    if not isinstance(value, kind):
        raise click.BadParameter(f"must be a JSON {kind.__name__}", param_hint=option)
    return value


@click.command()
@click.argument("package")
@click.argument("task_name", metavar="TASK")
@click.option("--args", "args_json", help="Positional arguments, a JSON list: '[1, 2]'.")
@click.option("--kwargs", "kwargs_json", help="Keyword arguments, a JSON object: '{\"a\": 1}'.")
@click.option(
    "--delay", type=click.IntRange(min=0), help="Run no sooner than this many ms from now."
)
@click.option(
    "--priority", type=click.IntRange(min=0), default=0, show_default=True, help="Lower runs first."
)
@json_option
def submit(
    package: str,
    task_name: str,
    args_json: str | None,
    kwargs_json: str | None,
    delay: int | None,
    priority: int,
    as_json: bool,
) -> None:
    """Submit a message of PACKAGE's TASK; prints its uuid."""
    args = _json_value("--args", args_json, list)
    kwargs = _json_value("--kwargs", kwargs_json, dict)
    with connected(package, None, None) as connection:
        task = connection.tasks.get(task_name)
        if task is None:
            names = ", ".join(sorted(connection.tasks))
            raise click.ClickException(f"{package!r} has no task {task_name!r} (it has: {names})")
        try:
            sent = connection.wait(
                task.generate(args=args, kwargs=kwargs, delay=delay, priority=priority)
            )
        except (ValueError, TypeError, AlsekError) as error:
            raise click.ClickException(f"Cannot submit {task_name!r}: {error}") from error
    if as_json:
        Output(True).json({"uuid": sent.uuid, "queue": sent.queue, "task": sent.task_name})
    else:
        click.echo(sent.uuid)
