"""The dashboard's actions (POST only, each with the page's CSRF token): pause, resume and
purge a queue; revoke a message or run a delayed one now; requeue or delete dead letters (one,
a selection, or all of a queue or task). Each leaves a notice and goes back to its page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from alsek.admin.types import PURGEABLE_STATES
from alsek.web.rendering import dashboard_of, leave_notice
from alsek.web.security import csrf_refusal, safe_next
from alsek.web.source import AdminSource

Form = dict[str, list[str]]
#: The largest form an action reads (a selection of a few thousand dead letters).
MAX_FORM_BYTES = 1 << 20


async def _form(request: Request) -> Form:
    """The URL-encoded form of the POST, refused when too large or without a valid token."""
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise HTTPException(413, f"the form is larger than {MAX_FORM_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, f"the form is larger than {MAX_FORM_BYTES} bytes")
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    refusal = csrf_refusal(request, form)
    if refusal is not None:
        raise HTTPException(403, f"Action refused: {refusal}")
    return form


def _one(form: Form, name: str) -> str:
    value = (form.get(name) or [""])[0].strip()
    if not value:
        raise HTTPException(400, f"the form names no {name}")
    return value


def _done(request: Request, form: Form, notice: str) -> Response:
    response = RedirectResponse(safe_next(request, (form.get("next") or [""])[0]), 303)
    leave_notice(response, request, notice)
    return response


async def _known_queue(source: AdminSource, form: Form) -> str:
    name = _one(form, "queue")
    if name not in {q.queue for q in await source("queues")}:
        raise HTTPException(404, f"Unknown queue {name!r}")
    return name


async def pause(request: Request) -> Response:
    """Stop the pools claiming from a queue (it still accepts messages)."""
    form = await _form(request)
    source = dashboard_of(request).source
    name = await _known_queue(source, form)
    await source("pause", name)
    return _done(request, form, f"Paused queue {name!r}: no pool claims from it until resumed.")


async def resume(request: Request) -> Response:
    """Let the pools claim from a queue again."""
    form = await _form(request)
    source = dashboard_of(request).source
    name = await _known_queue(source, form)
    was = await source("resume", name)
    return _done(request, form, f"Resumed queue {name!r}." if was else f"{name!r} was not paused.")


async def purge(request: Request) -> Response:
    """Delete a queue's waiting messages (ready, delayed or both)."""
    form = await _form(request)
    source = dashboard_of(request).source
    name = await _known_queue(source, form)
    state = _one(form, "state")
    if state not in PURGEABLE_STATES:
        raise HTTPException(400, f"state must be one of {', '.join(PURGEABLE_STATES)}")
    count = await source("purge", name, state)
    return _done(request, form, f"Purged {count} {state} message(s) of queue {name!r}.")


async def revoke(request: Request) -> Response:
    """Take a queued or running message out for good (its dead letter is kept)."""
    form = await _form(request)
    uuid = _one(form, "uuid")
    done = await dashboard_of(request).source("revoke", uuid)
    text = f"Revoked {uuid}." if done else f"{uuid} is neither queued nor running: not revoked."
    return _done(request, form, text)


async def run_now(request: Request) -> Response:
    """Make a delayed (or retrying) message ready at once."""
    form = await _form(request)
    uuid = _one(form, "uuid")
    done = await dashboard_of(request).source("run_now", uuid)
    text = f"{uuid} is ready to run now." if done else f"{uuid} is no longer waiting: unchanged."
    return _done(request, form, text)


def _selection(form: Form) -> dict[str, object]:
    """Which dead letters an action is about: ``only`` one, ``all`` of the filter (queue,
    task), or the ticked ``uuid`` boxes."""
    queue = (form.get("queue") or [""])[0] or None
    if (form.get("only") or [""])[0]:
        return {"queue": queue, "task": None, "uuids": [form["only"][0]]}
    if (form.get("all") or [""])[0] == "1":
        return {"queue": queue, "task": (form.get("task") or [""])[0] or None, "uuids": None}
    return {"queue": queue, "task": None, "uuids": [u for u in form.get("uuid", []) if u]}


def _on_dead(call: str, verb: str) -> Callable[[Request], Awaitable[Response]]:
    async def act(request: Request) -> Response:
        form = await _form(request)
        selection = _selection(form)
        if selection["uuids"] == []:
            return _done(request, form, f"Nothing {verb}: tick the dead letters to act on.")
        count = await dashboard_of(request).source(call, **selection)
        return _done(request, form, f"{verb.capitalize()} {count} dead letter(s).")

    act.__doc__ = f"{verb.capitalize()} dead letters: one, a selection, or all."
    return act


requeue_dead = _on_dead("requeue_dead", "requeued")
delete_dead = _on_dead("purge_dead", "deleted")
