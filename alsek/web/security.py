"""What keeps the dashboard safe: who may see it (HTTP basic or a bearer token), that every
action comes from the dashboard's own pages (a CSRF token), that a read-only dashboard acts on
nothing, and the headers that forbid scripts and frames from anywhere else.

Actions are POSTs carrying the token of a double-submit cookie (``SameSite=Strict``), and a
POST whose ``Origin`` is another site is refused even with a token.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "alsek_csrf"
CSRF_FIELD = "csrf"
#: Scripts, styles and forms from the dashboard only; no frames, no inline script.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Credentials:
    """Who may see the dashboard: ``user:password`` for HTTP basic, a bearer token, or both
    (either is accepted); neither means no authentication."""

    basic: tuple[str, str] | None = None
    token: str | None = None

    @classmethod
    def parse(cls, auth: str | None, token: str | None) -> Credentials:
        """From ``"user:password"`` and a token; a malformed ``auth`` is refused, naming it."""
        basic = None
        if auth is not None:
            user, sep, password = auth.partition(":")
            if not sep or not user or not password:
                raise ValueError(
                    "auth must be 'user:password' (both non-empty), e.g. auth='admin:s3cret'"
                )
            basic = (user, password)
        if token is not None and not token.strip():
            raise ValueError("token must not be empty: give a long random string, or None")
        return cls(basic, token)

    @property
    def required(self) -> bool:
        """Whether a request must authenticate."""
        return self.basic is not None or self.token is not None

    def accepts(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries these credentials (in constant time)."""
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and self.token is not None:
            return hmac.compare_digest(value.encode(), self.token.encode())
        if scheme == "basic" and self.basic is not None:
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, _, password = decoded.partition(":")
            same_user = hmac.compare_digest(user.encode(), self.basic[0].encode())
            same_password = hmac.compare_digest(password.encode(), self.basic[1].encode())
            return same_user and same_password
        return False

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` header of a refusal."""
        if self.basic is not None:
            return 'Basic realm="alsek dashboard", charset="UTF-8"'
        return 'Bearer realm="alsek dashboard"'


class GuardMiddleware:
    """In front of every route and static file: authentication, read-only refusal, and the
    security headers on every response."""

    def __init__(self, app: ASGIApp, credentials: Credentials, read_only: bool) -> None:
        self.app = app
        self.credentials = credentials
        self.read_only = read_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(Request(scope))
        if refusal is not None:
            await _with_headers(refusal)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])]
                present = {k.decode().lower() for k, _ in headers}
                headers += [
                    (k.encode(), v.encode())
                    for k, v in SECURITY_HEADERS.items()
                    if k not in present
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Response | None:
        if self.credentials.required and not self.credentials.accepts(
            request.headers.get("authorization")
        ):
            return PlainTextResponse(
                "401 Unauthorized: this dashboard needs credentials (HTTP basic or a bearer "
                "token, as it was started with).",
                status_code=401,
                headers={"www-authenticate": self.credentials.challenge()},
            )
        if self.read_only and request.method not in SAFE_METHODS:
            return PlainTextResponse(
                "403 Forbidden: this dashboard is read-only (started with --read-only / "
                "read_only=True); it carries out no action.",
                status_code=403,
            )
        return None


def _with_headers(response: Response) -> Response:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


# -- CSRF ----------------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The browser's CSRF token: its cookie's, or a new one (set by ``remember_csrf``)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if len(current) == 43 and current.replace("-", "").replace("_", "").isalnum():
        return current
    token = getattr(request.state, "new_csrf", None)
    if token is None:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return str(token)


def remember_csrf(request: Request, response: Response) -> None:
    """Set the CSRF cookie on ``response`` when the request had none."""
    token = getattr(request.state, "new_csrf", None)
    if token is not None:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            path=root_path(request) or "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )


def csrf_refusal(request: Request, form: Mapping[str, list[str]]) -> str | None:
    """Why an action must be refused (a missing or wrong token, another site's origin), or
    ``None`` when it may go ahead."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.url.netloc:
        return f"the request comes from another site ({origin})"
    if request.headers.get("sec-fetch-site") == "cross-site":
        return "the request comes from another site"
    cookie = request.cookies.get(CSRF_COOKIE)
    sent = (form.get(CSRF_FIELD) or [""])[0]
    if not cookie or not sent:
        return "the form carries no CSRF token (reload the page and try again)"
    if not hmac.compare_digest(cookie.encode(), sent.encode()):
        return "the form's CSRF token does not match (reload the page and try again)"
    return None


def root_path(request: Request) -> str:
    """Where the dashboard is mounted (``""`` when served on its own)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def safe_next(request: Request, target: str | None) -> str:
    """Where to go after an action: ``target`` when it is a path of this dashboard, else its
    overview (never another site)."""
    base = root_path(request)
    inside = target is not None and target.startswith((base + "/", base + "?"))
    if inside and target and "\\" not in target and urlsplit(target).netloc == "":
        return target
    return base + "/"
