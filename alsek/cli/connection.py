"""Which Redis the operator commands talk to, and one-line errors when it cannot be reached.

A command reaches Redis through a package (``alsek info myapp``: the broker its tasks use, as
the pools find it) or through ``--url`` / ``ALSEK_REDIS_URL`` and ``--namespace`` /
``ALSEK_NAMESPACE`` (default ``redis://localhost:6379/0`` and ``alsek``). A package whose tasks
only have an ``AsyncBroker`` is served by an ``AsyncAdmin`` on an event loop of the command's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click
import redis.exceptions

from alsek.admin import Admin, AsyncAdmin
from alsek.core.broker import AsyncBroker, Broker
from alsek.core.worker.helpers import extract_broker
from alsek.defaults import DEFAULT_NAMESPACE
from alsek.exceptions import AlsekError
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.utils.scanning import collect_async_tasks, collect_tasks

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_URL = "redis://localhost:6379/0"
#: Errors that mean Redis could not be reached (or answered nothing in time).
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def describe_client(conn: Any) -> str:
    """Where a Redis client connects, as a URL with its password masked."""
    kwargs = getattr(getattr(conn, "connection_pool", None), "connection_kwargs", {})
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    if not kwargs:  # a cluster client keeps its nodes elsewhere
        node = getattr(conn, "get_default_node", lambda: None)()
        return f"redis://{node.host}:{node.port}" if node is not None else type(conn).__name__
    auth = f"{kwargs.get('username') or ''}:***@" if kwargs.get("password") else ""
    scheme = "rediss" if "SSL" in conn.connection_pool.connection_class.__name__ else "redis"
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"{scheme}://{auth}{host}:{port}/{kwargs.get('db', 0)}"


class Connection:
    """An admin for the command, sync whatever the broker: async calls run on one event loop
    kept for the command's life.

    Args:
        admin: an ``Admin``, or an ``AsyncAdmin`` (its calls are run to completion).
        where: the masked URL, for error messages.
        tasks: the package's tasks by name (empty without a package).
    """

    def __init__(self, admin: Admin | AsyncAdmin, where: str, tasks: dict[str, Any]) -> None:
        self.admin = admin
        self.where = where
        self.tasks = tasks
        self._loop: asyncio.AbstractEventLoop | None = None

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``admin.<name>(*args, **kwargs)``, awaited when the admin is async."""
        result = getattr(self.admin, name)(*args, **kwargs)
        return self.wait(result)

    def wait(self, result: Any) -> Any:
        """``result``, run to completion on the command's loop when it is a coroutine (an
        async admin's call, an async task's submit)."""
        if not asyncio.iscoroutine(result):
            return result
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(result)

    def close(self) -> None:
        """Close the admin's connections (and the loop)."""
        conn = self.admin.broker.backend.conn
        if isinstance(self.admin, AsyncAdmin):
            self.wait(conn.aclose())
        else:
            conn.close()
        if self._loop is not None:
            self._loop.close()


def _package_tasks(package: str) -> dict[str, Any]:
    """Every task of ``package``, sync and async, by name; a one-line error if none."""
    found: dict[str, Any] = {}
    errors: list[str] = []
    for collect in (collect_tasks, collect_async_tasks):
        try:
            found.update({task.name: task for task in collect(package)})
        except ImportError as error:
            raise click.ClickException(f"Cannot import {package!r}: {error}") from error
        except AlsekError as error:
            errors.append(str(error))
        except Exception as error:  # the package's own code failed while being imported
            message = f"Cannot import {package!r}: {type(error).__name__}: {error}"
            raise click.ClickException(message) from error
    if not found:
        raise click.ClickException(f"{package!r}: {'; '.join(errors)}")
    return found


def _package_connection(package: str) -> Connection:
    tasks = _package_tasks(package)
    sync = [task for task in tasks.values() if isinstance(task.broker, Broker)]
    try:
        broker = extract_broker(sync or list(tasks.values()))
    except AlsekError as error:
        raise click.ClickException(f"{package!r}: {error}") from error
    admin = AsyncAdmin(broker) if isinstance(broker, AsyncBroker) else Admin(broker)
    return Connection(admin, describe_client(broker.backend.conn), tasks)


def _url_connection(url: str, namespace: str) -> Connection:
    try:
        backend = RedisBackend(url, namespace=namespace)
    except (ValueError, AlsekError) as error:
        raise click.ClickException(f"Bad --url {mask_url(url)!r}: {error}") from error
    return Connection(Admin(Broker(backend)), mask_url(url), {})


def open_connection(package: str | None, url: str | None, namespace: str | None) -> Connection:
    """The connection the options ask for (see the module's docstring)."""
    if package and (url or namespace):
        raise click.UsageError(
            "Give a package or --url/--namespace, not both: a package brings its broker"
        )
    if package:
        return _package_connection(package)
    return _url_connection(url or DEFAULT_URL, namespace or DEFAULT_NAMESPACE)


@contextmanager
def connected(package: str | None, url: str | None, namespace: str | None) -> Iterator[Connection]:
    """A connection for the ``with`` block; Redis errors become one-line errors naming it."""
    connection = open_connection(package, url, namespace)
    try:
        yield connection
    except UNREACHABLE as error:
        raise click.ClickException(f"Cannot reach Redis at {connection.where}: {error}") from error
    except redis.exceptions.RedisError as error:
        raise click.ClickException(f"Redis at {connection.where} refused: {error}") from error
    finally:
        with suppress(*UNREACHABLE):
            connection.close()


def connection_options(function: F) -> F:
    """``--app``, ``--url`` and ``--namespace``: where the command's Redis is."""
    options = [
        click.option(
            "--app",
            "app",
            envvar="ALSEK_APP",
            metavar="PACKAGE",
            help="Package whose tasks' broker to use (as the pools find it) [env: ALSEK_APP].",
        ),
        click.option(
            "--url",
            envvar="ALSEK_REDIS_URL",
            help=f"Redis URL when no package is given [env: ALSEK_REDIS_URL; default: "
            f"{DEFAULT_URL}].",
        ),
        click.option(
            "--namespace",
            envvar="ALSEK_NAMESPACE",
            help=f"Key namespace with --url [env: ALSEK_NAMESPACE; default: {DEFAULT_NAMESPACE}].",
        ),
    ]

    for option in reversed(options):
        function = option(function)
    return function
