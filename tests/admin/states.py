"""Put ``opswork`` messages in each state through the broker itself (no pool needed)."""

from __future__ import annotations

from types import ModuleType

from alsek.core.broker import ClaimSource
from alsek.core.message import Message
from alsek.utils.parsing import ExceptionDetails


def ready(ops: ModuleType, n: int, **options: object) -> list[Message]:
    """``n`` ready ``add`` messages."""
    return [ops.add.generate(args=(i, 1), **options) for i in range(n)]


def delayed(ops: ModuleType, n: int, delay: int = 600_000) -> list[Message]:
    """``n`` ``add`` messages delayed by ``delay`` ms."""
    return [ops.add.generate(args=(i, 2), delay=delay) for i in range(n)]


def running(ops: ModuleType, n: int, task: str = "sleepy") -> list[Message]:
    """``n`` messages of ``task`` claimed (leased) by a test owner."""
    messages = [
        getattr(ops, task).generate(args=(30,) if task == "sleepy" else ()) for _ in range(n)
    ]
    claim = ops.broker.claim(
        [ClaimSource(ops.QUEUE, (task,))],
        n,
        owner_id="test-owner",
        status=ops.tracker.claim_status(),
    )
    assert {m.uuid for m in claim.messages} == {m.uuid for m in messages}
    return claim.messages


def dead(ops: ModuleType, n: int, task: str = "boom") -> list[Message]:
    """``n`` messages of ``task`` claimed and failed for good (dead-lettered)."""
    failed = running(ops, n, task)
    for message in failed:
        message.update(
            exception_details=ExceptionDetails(
                "ValueError", "boom on purpose", "Traceback: ..."
            ).as_dict()
        )
        ops.broker.fail(message)
    return failed
