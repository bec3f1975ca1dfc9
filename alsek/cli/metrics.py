"""``alsek metrics``: serve Prometheus metrics read from Redis at each scrape (queue depths,
paused queues, live workers and their slots; ``alsek.metrics.exporter``)."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from alsek.cli.connection import connected, connection_options
from alsek.cli.inspect import package_argument
from alsek.metrics.serving import DEFAULT_METRICS_HOST, MetricsServer

#: The exporter's default port (a pool's own metrics take ``--metrics-port``).
DEFAULT_EXPORTER_PORT = 9808


def _wait_for_a_stop() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    stop.wait()


@click.command()
@package_argument
@connection_options
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=DEFAULT_EXPORTER_PORT,
    show_default=True,
    help="TCP port to serve /metrics on (0: any free port, printed at start).",
)
@click.option(
    "--host",
    default=DEFAULT_METRICS_HOST,
    show_default=True,
    help="Address to bind (127.0.0.1: this host only).",
)
def metrics(
    package: str | None,
    app: str | None,
    url: str | None,
    namespace: str | None,
    port: int,
    host: str,
) -> None:
    """Serve Prometheus metrics of the queues and workers, read from Redis at each scrape:
    alsek_queue_messages{queue,state}, alsek_queue_paused{queue}, alsek_workers{kind},
    alsek_worker_slots{worker,state} (see docs/observability.md)."""
    try:
        from alsek.metrics.exporter import RedisCollector

        registry = _registry()
    except ImportError as error:
        raise click.ClickException(str(error)) from error
    with connected(package or app, url, namespace) as connection:
        registry.register(RedisCollector(connection.call))
        try:
            server = MetricsServer(registry, port, host)
        except OSError as error:
            raise click.ClickException(
                f"Cannot serve metrics on {host}:{port}: {error.strerror or error}; "
                "choose another --port (or --host)"
            ) from error
        click.echo(f"Serving metrics of {connection.where} on {server.url} (Ctrl-C to stop)")
        try:
            _wait_for_a_stop()
        finally:
            server.close()


def _registry() -> Any:
    """A registry of its own: the exporter serves Redis's figures, not this process's."""
    from alsek.metrics import require_prometheus

    return require_prometheus().CollectorRegistry(auto_describe=False)
