"""Turning what Redis holds into the operator's values, without I/O.

Bodies are decoded with the broker's serializer (JSON unless the user chose another), so
nothing is unpickled unless the user chose a binary serializer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alsek.admin.types import ErrorInfo, MessageInfo, MessageState, WorkerInfo
from alsek.core.status.types import StatusUpdate, TaskStatus
from alsek.core.worker.heartbeat import WorkerRecord, beat_timeout
from alsek.storage.serialization import Serializer


def server_ms(time_reply: Sequence[Any]) -> int:
    """Milliseconds since the epoch from a Redis ``TIME`` reply (seconds, microseconds)."""
    return int(time_reply[0]) * 1000 + int(time_reply[1]) // 1000


def worker_info(record: WorkerRecord, now: int) -> WorkerInfo:
    """A worker's record, ``alive`` judged at ``now`` (server time)."""
    return WorkerInfo(
        id=record.id,
        kind=record.kind,
        host=record.host,
        pid=record.pid,
        version=record.version,
        queues=record.queues,
        tasks=record.tasks,
        slots=record.slots,
        busy=record.busy,
        started_at=record.started_at,
        last_beat_at=record.last_beat_at,
        alive=now - record.last_beat_at <= beat_timeout(record.interval_ms),
        state=record.state,
    )


def decode_data(serializer: Serializer, raw: str | None) -> dict[str, Any] | None:
    """The stored message (``Message.data``), or ``None`` when missing or undecodable."""
    if raw is None:
        return None
    try:
        data = serializer.reverse(raw)
    except Exception:  # an undecodable body is reported as such by the caller
        return None
    return data if isinstance(data, dict) else None


def error_of(data: dict[str, Any] | None, reason: str | None = None) -> ErrorInfo | None:
    """Why the message failed: its recorded exception, else a dead letter's ``reason``."""
    details = (data or {}).get("exception_details")
    if isinstance(details, dict) and details.get("name"):
        return ErrorInfo(str(details["name"]), details.get("text"), details.get("traceback"))
    if reason:
        name, _, text = reason.partition(": ")
        return ErrorInfo(name, text or None, None)
    return None


def failure_error(serializer: Serializer, raw: str | None) -> ErrorInfo | None:
    """The failure record a result store keeps for a message that failed for good."""
    record = decode_data(serializer, raw)
    if not record:
        return None
    return ErrorInfo(str(record.get("name", "UnknownError")), record.get("text"), None)


def status_update(serializer: Serializer, raw: str | None) -> StatusUpdate | None:
    """A stored status (``{"value", "details", "at"}``), or ``None``."""
    data = decode_data(serializer, raw)
    if not data or data.get("value") not in TaskStatus.__members__:
        return None
    return StatusUpdate(TaskStatus[data["value"]], data.get("details"), data.get("at"))


def history_update(serializer: Serializer, item: str) -> StatusUpdate | None:
    """A status history item, ``"<ms> <payload>"``, as the status at the time of its write."""
    at, _, raw = item.partition(" ")
    update = status_update(serializer, raw)
    return update._replace(at=int(at)) if update and at.isdigit() else update


def listed_message(
    serializer: Serializer,
    queue: str,
    uuid: str,
    state: MessageState,
    raw: str | None,
    task: str | None = None,
    reason: str | None = None,
) -> MessageInfo:
    """A message of a listing: its body and error, no status or result (``message(uuid)``
    reads those)."""
    data = decode_data(serializer, raw)
    name = task or str((data or {}).get("task_name", ""))
    return MessageInfo(
        uuid=uuid,
        queue=queue,
        task=name,
        state=state,
        data=data,
        status=None,
        history=[],
        result=None,
        error=error_of(data, reason),
    )
