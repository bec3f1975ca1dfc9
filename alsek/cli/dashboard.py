"""``alsek dashboard``: serve the web dashboard (``alsek.web``) of a package's broker, or of
``--url``, with uvicorn. Loopback only unless ``--host`` says otherwise; credentials come from
``--auth`` / ``ALSEK_DASHBOARD_AUTH`` (HTTP basic) and ``ALSEK_DASHBOARD_TOKEN`` (bearer)."""

from __future__ import annotations

import ipaddress
import os

import click

from alsek.cli.connection import connection_options, open_connection
from alsek.cli.inspect import package_argument

TOKEN_VAR = "ALSEK_DASHBOARD_TOKEN"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@package_argument
@connection_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port."
)
@click.option("--read-only", is_flag=True, help="Show everything, change nothing (no action).")
@click.option(
    "--auth",
    metavar="USER:PASSWORD",
    envvar="ALSEK_DASHBOARD_AUTH",
    help="Require HTTP basic authentication [env: ALSEK_DASHBOARD_AUTH]. A bearer token is "
    f"read from {TOKEN_VAR} (never from the command line).",
)
@click.option(
    "--refresh",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="How often open pages refresh their live parts (0: never).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
    help="uvicorn's log level.",
)
def dashboard(
    package: str | None,
    app: str | None,
    url: str | None,
    namespace: str | None,
    host: str,
    port: int,
    read_only: bool,
    auth: str | None,
    refresh: float,
    log_level: str,
) -> None:
    """Serve the web dashboard: queues, messages, workers, dead letters, schedules."""
    try:
        import uvicorn

        from alsek.web import create_app
    except ImportError as error:
        raise click.ClickException(
            f"alsek dashboard needs the 'web' extra: pip install 'alsek[web]' ({error})"
        ) from error
    token = os.environ.get(TOKEN_VAR) or None
    connection = open_connection(package or app, url, namespace)
    try:
        web_app = create_app(
            connection.admin.broker,
            read_only=read_only,
            auth=auth,
            token=token,
            refresh_ms=round(refresh * 1000),
            tasks=list(connection.tasks.values()),
        )
    except ValueError as error:
        raise click.ClickException(f"Cannot start the dashboard: {error}") from error
    guards = [name for name, on in (("basic auth", auth), ("bearer token", token)) if on]
    if not guards and not _is_loopback(host):
        click.echo(
            f"Warning: serving on {host} without --auth or {TOKEN_VAR}: anyone who reaches "
            "this port can see your queues" + ("" if read_only else " and act on them"),
            err=True,
        )
    mode = "read-only" if read_only else "read-write"
    click.echo(
        f"alsek dashboard of {connection.where} on http://{host}:{port}/ ({mode}"
        + (f", {' and '.join(guards)}" if guards else "")
        + ")",
        err=True,
    )
    uvicorn.run(web_app, host=host, port=port, log_level=log_level)
