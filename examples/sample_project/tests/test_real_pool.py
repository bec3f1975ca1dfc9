"""The tasks in a real ``ThreadWorkerPool`` (child processes) against the session's server."""

from __future__ import annotations

import os
import threading

import pytest
from shop.settings import results
from shop.tasks import charge, price

from alsek.core.worker import ThreadWorkerPool

pytestmark = pytest.mark.skipif(
    os.environ.get("SHOP_TEST_REDIS") == "fakeredis",
    reason="a real pool runs tasks in child processes, which cannot see fakeredis",
)


def test_a_thread_pool_runs_the_orders(alsek_redis_url: str) -> None:
    pool = ThreadWorkerPool(tasks=[price, charge], n_threads=2, n_processes=1)
    serving = threading.Thread(target=pool.run)
    serving.start()
    try:
        message = price.generate(args=([{"cents": 100, "quantity": 3}],))
        assert results.get(message, timeout=20_000) == 300
    finally:
        pool.stop()  # graceful, as on SIGTERM; returns once run() has returned
        serving.join()
