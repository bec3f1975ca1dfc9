"""The order tasks: called as plain functions, then run by an in-process worker."""

from __future__ import annotations

import pytest
from shop.settings import broker, results
from shop.tasks import CardDeclined, charge, price

TEA = [{"cents": 350, "quantity": 2}, {"cents": 120, "quantity": 1}]


def test_price_adds_up_the_items() -> None:
    # A task is still its function: calling it runs it here, with no Redis at all.
    assert price(TEA) == 820


def test_the_worker_prices_and_charges_orders(alsek_worker) -> None:
    worker = alsek_worker(price, charge)
    priced = price.generate(args=(TEA,))
    charged = charge.generate(args=("o-1", 820))
    worker.join()  # every message of the orders queue ran
    assert results.get(priced) == 820
    assert results.get(charged) == "charged 820 cents for order o-1"


def test_a_declined_card_makes_join_raise(alsek_worker) -> None:
    worker = alsek_worker(charge)
    message = charge.generate(args=("o-2", 99_999))
    with pytest.raises(CardDeclined, match="over the card limit"):
        worker.join()  # fail_fast: the task's own exception, as soon as it fails for good
    assert broker.in_dlq(message)
