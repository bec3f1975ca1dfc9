"""The async receipt task, run by the same in-process worker fixture."""

from __future__ import annotations

from shop.settings import async_results
from shop.tasks import send_receipt


async def test_receipts_are_sent(alsek_worker) -> None:
    worker = alsek_worker(send_receipt)  # runs it on an event loop of its own
    message = await send_receipt.generate(args=("ann@example.com", 820))
    worker.join()
    assert await async_results.get(message) == "receipt for 820 cents sent to ann@example.com"
