"""The dashboard's settings and its one way to answer with a page: Jinja2 templates shipped in
the package, escaped everywhere (``autoescape`` on every template, whatever its name)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from alsek.utils.temporal import utcnow_timestamp_ms
from alsek.web import views
from alsek.web.security import CSRF_FIELD, csrf_token, remember_csrf, root_path
from alsek.web.source import AdminSource

NOTICE_COOKIE = "alsek_notice"
#: The header of the page script's live refreshes (static/dashboard.js).
LIVE_HEADER = "X-Alsek-Live"
#: The pages in the navigation bar: (endpoint path, label).
NAVIGATION = (
    ("/", "Overview"),
    ("/workers", "Workers"),
    ("/dead", "Dead letters"),
    ("/scheduled", "Scheduled"),
    ("/triggers", "Triggers"),
)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("alsek.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=views.when, pretty=views.pretty, duration=views.duration)
    return env


@dataclass
class Dashboard:
    """One dashboard: where its data comes from and how it behaves.

    Args:
        source: the admin the pages read and the actions call.
        read_only: show no action and carry out none.
        refresh_ms: how often the pages refresh their live parts (0: never).
        title: shown in the header and the browser's tab.
    """

    source: AdminSource
    read_only: bool
    refresh_ms: int
    title: str
    env: jinja2.Environment = field(default_factory=_environment)
    #: Charts of long windows, reused until their time: (queue, window) -> (until, chart).
    charts: dict[tuple[str | None, str], tuple[float, dict[str, Any]]] = field(default_factory=dict)

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> Response:
        """``template`` with ``context`` and what every page needs (links, CSRF token,
        navigation, the notice left by the last action)."""
        root = root_path(request)
        # A live refresh of the page the action left may reach the server before the page the
        # action redirects to: only a page load takes the notice, or the refresh would eat it.
        live = request.headers.get(LIVE_HEADER) == "1"
        notice = None if live else request.cookies.get(NOTICE_COOKIE)
        page = self.env.get_template(template).render(
            request=request,
            root=root,
            href=lambda path, *segments, **query: views.link(root, path, *segments, **query),
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            title=self.title,
            read_only=self.read_only,
            refresh_ms=self.refresh_ms,
            csrf_field=CSRF_FIELD,
            csrf=csrf_token(request),
            navigation=NAVIGATION,
            notice=unquote(notice) if notice else None,
            now_ms=utcnow_timestamp_ms(),
            ago=views.ago,
            **context,
        )
        response = HTMLResponse(page, status_code=status_code)
        remember_csrf(request, response)
        if notice:
            response.delete_cookie(NOTICE_COOKIE, path=root or "/")
        return response

    def error(self, request: Request, status_code: int, problem: str) -> Response:
        """A page saying what went wrong and what to do."""
        return self.render(request, "error.html", status_code, problem=problem, page_title="Error")


def leave_notice(response: Response, request: Request, text: str) -> None:
    """Show ``text`` on the next page this browser loads (the outcome of an action)."""
    response.set_cookie(
        NOTICE_COOKIE, quote(text), max_age=60, path=root_path(request) or "/", samesite="strict"
    )


def dashboard_of(request: Request) -> Dashboard:
    """The dashboard serving ``request``."""
    found: Dashboard = request.app.state.dashboard
    return found
