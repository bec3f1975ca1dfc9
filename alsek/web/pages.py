"""The dashboard's pages (GET only): overview, queue, message and search, workers, dead
letters, scheduled messages, triggers. Each reads through the admin and renders a template;
what changes while one looks is marked ``data-live`` in the template, for the refresh script."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from alsek.admin import RUN_MS_BUCKETS
from alsek.admin.types import LISTED_STATES, MessageInfo, QueueStats
from alsek.utils.temporal import utcnow_timestamp_ms
from alsek.web.charts import (
    DEFAULT_WINDOW,
    WINDOWS,
    bucketize,
    run_time_labels,
    run_time_svg,
    run_times,
    throughput_svg,
    totals,
)
from alsek.web.rendering import dashboard_of
from alsek.web.security import root_path
from alsek.web.source import AdminSource
from alsek.web.views import Page, link

#: Messages per page of a listing.
PAGE_SIZE = 50


def _query(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value or None


def _page(request: Request, total: int | None) -> Page:
    raw = request.query_params.get("page", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise HTTPException(400, f"page must be a whole number from 1, got {raw!r}")
    return Page(int(raw), PAGE_SIZE, total)


async def _chart(source: AdminSource, request: Request, queue: str | None = None) -> dict[str, Any]:
    """The throughput and run-time charts of the window the query asks for (``window``)."""
    key = request.query_params.get("window", DEFAULT_WINDOW)
    if key not in WINDOWS:
        raise HTTPException(400, f"window must be one of {', '.join(WINDOWS)}, got {key!r}")
    window = WINDOWS[key]
    cache = dashboard_of(request).charts
    kept = cache.get((queue, key))
    if kept is not None and kept[0] > time.monotonic():
        return kept[1]
    now = utcnow_timestamp_ms()
    points = await source(
        "throughput", queue=queue, since_ms=now - window.span_ms, step=window.step
    )
    buckets = bucketize(points, window, now)
    runs = run_times(points)
    chart = {
        "window": window,
        "windows": WINDOWS,
        "svg": throughput_svg(buckets, window),
        "totals": totals(buckets),
        "run_times": run_time_svg(runs, run_time_labels(RUN_MS_BUCKETS, len(runs))),
    }
    cache[(queue, key)] = (time.monotonic() + window.reuse_seconds, chart)
    return chart


async def _stats(source: AdminSource, queue: str) -> tuple[QueueStats, list[QueueStats]]:
    """``queue``'s counts (and every queue's), or a 404 naming the known queues."""
    every = await source("queues")
    for stats in every:
        if stats.queue == queue:
            return stats, every
    known = ", ".join(q.queue for q in every) or "none yet"
    raise HTTPException(404, f"Unknown queue {queue!r} (known queues: {known})")


def _count(stats: QueueStats, state: str, task: str | None) -> int:
    """How many of ``stats``' messages (``task``'s only, when given) are in ``state``."""
    if task is None:
        return int(getattr(stats, state))
    return sum(int(getattr(t, state)) for t in stats.tasks if t.task == task)


async def overview(request: Request) -> Response:
    """Queues with their depths and paused state, workers alive, DLQ total, throughput."""
    dashboard = dashboard_of(request)
    source = dashboard.source
    queues = await source("queues")
    workers = [w for w in await source("workers") if w.alive]
    return dashboard.render(
        request,
        "overview.html",
        page_title="Overview",
        queues=queues,
        workers=workers,
        busy=sum(w.busy for w in workers),
        slots=sum(w.slots for w in workers),
        dead_total=sum(q.dead for q in queues),
        chart=await _chart(source, request),
    )


async def queue(request: Request) -> Response:
    """One queue: its counts by task, a page of its messages in one state, its actions."""
    dashboard = dashboard_of(request)
    source = dashboard.source
    name = request.path_params["queue"]
    stats, _ = await _stats(source, name)
    state = request.query_params.get("state", "ready")
    if state not in LISTED_STATES:
        raise HTTPException(400, f"state must be one of {', '.join(LISTED_STATES)}, got {state!r}")
    task = _query(request, "task")
    page = _page(request, _count(stats, state, task))
    messages = await source("messages", name, state, task, page.offset, page.size)
    return dashboard.render(
        request,
        "queue.html",
        page_title=f"Queue {name}",
        stats=stats,
        state=state,
        states=LISTED_STATES,
        task=task,
        page=page,
        messages=messages,
        chart=await _chart(source, request, name),
    )


async def message(request: Request) -> Response:
    """One message: where it is, its status timeline, arguments, result or traceback."""
    dashboard = dashboard_of(request)
    uuid = request.path_params["uuid"]
    info: MessageInfo | None = await dashboard.source("message", uuid)
    if info is None:
        raise HTTPException(404, f"No message with uuid {uuid!r} (unknown, or expired)")
    return dashboard.render(request, "message.html", page_title=f"Message {uuid}", info=info)


async def search(request: Request) -> Response:
    """Go to the message whose uuid was typed in the search box."""
    uuid = _query(request, "uuid")
    if uuid is None:
        raise HTTPException(400, "Type the uuid of a message to find it")
    if await dashboard_of(request).source("message", uuid) is None:
        raise HTTPException(404, f"No message with uuid {uuid!r} (unknown, or expired)")
    return RedirectResponse(link(root_path(request), "/messages", uuid), status_code=303)


async def workers(request: Request) -> Response:
    """Every worker pool with a live heartbeat: kind, host, queues, busy/slots, last beat."""
    dashboard = dashboard_of(request)
    found = await dashboard.source("workers")
    return dashboard.render(request, "workers.html", page_title="Workers", workers=found)


async def dead(request: Request) -> Response:
    """Dead letters by queue and task, a page of them to requeue or delete."""
    dashboard = dashboard_of(request)
    source = dashboard.source
    queue_name, task = _query(request, "queue"), _query(request, "task")
    every = await source("queues")
    chosen = [q for q in every if queue_name is None or q.queue == queue_name]
    page = _page(request, sum(_count(q, "dead", task) for q in chosen))
    if queue_name is not None:
        letters = await source("messages", queue_name, "dead", task, page.offset, page.size)
    else:
        letters = (await source("dead", None, task, page.offset + page.size))[page.offset :]
    return dashboard.render(
        request,
        "dead.html",
        page_title="Dead letters",
        queues=every,
        queue=queue_name,
        task=task,
        page=page,
        letters=letters,
    )


async def scheduled(request: Request) -> Response:
    """Messages waiting for their time: delayed, or retrying after a backoff."""
    dashboard = dashboard_of(request)
    source = dashboard.source
    queue_name = _query(request, "queue")
    every = await source("queues")
    waiting = [q for q in every if q.delayed and queue_name in (None, q.queue)]
    page = _page(request, sum(q.delayed for q in waiting) if queue_name else None)
    found: list[MessageInfo] = []
    if queue_name is not None:
        found = await source("messages", queue_name, "delayed", None, page.offset, page.size)
    else:  # the soonest of each queue, merged: a queue's own page goes further
        for stats in waiting:
            found += await source("messages", stats.queue, "delayed", None, 0, page.size)
        found = sorted(found, key=lambda m: (m.data or {}).get("ready_at") or 0)[: page.size]
    return dashboard.render(
        request,
        "scheduled.html",
        page_title="Scheduled",
        queues=every,
        queue=queue_name,
        page=page,
        messages=found,
        total=sum(q.delayed for q in waiting),
    )


async def triggers(request: Request) -> Response:
    """The package's trigger tasks: their schedule and next firing."""
    dashboard = dashboard_of(request)
    now = datetime.now(timezone.utc)
    rows = []
    for task in dashboard.source.tasks:
        trigger = getattr(task, "trigger", None)
        if trigger is None:
            continue
        upcoming = trigger.get_next_fire_time(None, now)
        rows.append(
            {
                "name": task.name,
                "queue": task.queue,
                "trigger": str(trigger),
                "next_ms": int(upcoming.timestamp() * 1000) if upcoming else None,
            }
        )
    return dashboard.render(
        request,
        "triggers.html",
        page_title="Triggers",
        triggers=sorted(rows, key=lambda row: row["name"]),
        has_package=bool(dashboard.source.tasks),
    )
