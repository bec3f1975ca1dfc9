"""``create_app``: the dashboard as an ASGI app, served by ``alsek dashboard`` or mounted in a
FastAPI / Starlette app (``app.mount("/alsek", create_app(broker))``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis.exceptions
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from alsek.core.broker import AsyncBroker, Broker
from alsek.web import actions, pages
from alsek.web.rendering import Dashboard, dashboard_of
from alsek.web.security import Credentials, GuardMiddleware
from alsek.web.source import AdminSource

STATIC = Path(__file__).resolve().parent / "static"
#: How often pages refresh their live parts by default (ms).
DEFAULT_REFRESH_MS = 2000

PAGES = (
    ("/", pages.overview),
    ("/queues/{queue:path}", pages.queue),
    ("/messages/{uuid}", pages.message),
    ("/search", pages.search),
    ("/workers", pages.workers),
    ("/dead", pages.dead),
    ("/scheduled", pages.scheduled),
    ("/triggers", pages.triggers),
)
ACTIONS = (
    ("/actions/pause", actions.pause),
    ("/actions/resume", actions.resume),
    ("/actions/purge", actions.purge),
    ("/actions/revoke", actions.revoke),
    ("/actions/run-now", actions.run_now),
    ("/actions/requeue-dead", actions.requeue_dead),
    ("/actions/delete-dead", actions.delete_dead),
)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return dashboard_of(request).error(request, error.status_code, str(error.detail))


async def _redis_error(request: Request, error: Exception) -> Response:
    problem = f"Redis did not answer ({type(error).__name__}: {error}); retrying on refresh."
    return dashboard_of(request).error(request, 503, problem)


def create_app(
    broker: Broker | AsyncBroker,
    *,
    read_only: bool = False,
    auth: str | None = None,
    token: str | None = None,
    refresh_ms: int = DEFAULT_REFRESH_MS,
    tasks: Sequence[Any] = (),
    title: str = "alsek",
) -> Starlette:
    """The web dashboard of ``broker``'s queues, as an ASGI app.

    Args:
        broker: whose queues, workers and dead letters to show (a ``Broker`` is read in a
            thread pool, an ``AsyncBroker`` on the event loop).
        read_only: show no button and refuse every action (POST) with 403.
        auth: ``"user:password"``: require HTTP basic authentication.
        token: require ``Authorization: Bearer <token>`` (either credential is accepted when
            both are given).
        refresh_ms: how often open pages refresh their live parts; 0 turns it off.
        tasks: the tasks of the application (its trigger tasks are listed on Triggers).
        title: shown in the header and the browser's tab.

    Raises:
        ValueError: a malformed ``auth``, an empty ``token`` or a negative ``refresh_ms``.
    """
    credentials = Credentials.parse(auth, token)
    if isinstance(refresh_ms, bool) or not isinstance(refresh_ms, int) or refresh_ms < 0:
        raise ValueError(f"refresh_ms must be an int >= 0 (0: no refresh), got {refresh_ms!r}")
    routes: list[BaseRoute] = [Route(path, page, methods=["GET", "HEAD"]) for path, page in PAGES]
    if not read_only:
        routes += [Route(path, action, methods=["POST"]) for path, action in ACTIONS]
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(GuardMiddleware, credentials=credentials, read_only=read_only)],
        exception_handlers={
            HTTPException: _http_error,
            redis.exceptions.RedisError: _redis_error,
        },
    )
    app.state.dashboard = Dashboard(AdminSource(broker, tasks), read_only, refresh_ms, title)
    return app
