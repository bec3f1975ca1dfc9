"""The shop's tasks: price an order, charge a card, send a receipt (async)."""

from __future__ import annotations

from alsek import task
from shop.settings import async_broker, async_results, broker, results

#: Largest amount (cents) a card accepts.
CARD_LIMIT = 50_000


class CardDeclined(Exception):
    """The card refused the charge."""


@task(broker, queue="orders", result_store=results)
def price(items: list[dict[str, int]]) -> int:
    """The order's total, in cents."""
    return sum(item["cents"] * item["quantity"] for item in items)


@task(broker, queue="orders", max_retries=0, result_store=results)
def charge(order_id: str, cents: int) -> str:
    """Charge the card; a charge over the limit is declined (and not retried)."""
    if cents > CARD_LIMIT:
        raise CardDeclined(f"order {order_id}: {cents} cents is over the card limit")
    return f"charged {cents} cents for order {order_id}"


@task(async_broker, queue="emails", result_store=async_results)
async def send_receipt(email: str, cents: int) -> str:
    """Send the receipt (pretend to)."""
    return f"receipt for {cents} cents sent to {email}"
