"""pytest fixtures for testing your alsek tasks, installed with alsek (``pytest11`` entry point).

* ``alsek_redis_server`` (session): a throwaway ``RedisServer``, started on first use.
* ``alsek_redis_url`` (session): ``$ALSEK_TEST_REDIS_URL`` when set (e.g. a CI service),
  else the URL of ``alsek_redis_server``.
* ``alsek_worker``: ``worker = alsek_worker(add, mul)`` starts an ``InProcessWorker`` for those
  tasks, stopped when the test ends; ``worker.join()`` waits until their queues are empty and
  raises the first task failure.

Nothing here runs unless a test asks for one of these fixtures, and this module imports no
more of alsek until then, so a suite that does not use them does not notice them. Turn the
plugin off with ``-p no:alsek``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from alsek.testing.server import RedisServer
    from alsek.testing.worker import InProcessWorker

#: An existing server for ``alsek_redis_url``, instead of a throwaway one.
REDIS_URL_VARIABLE = "ALSEK_TEST_REDIS_URL"


@pytest.fixture(scope="session")
def alsek_redis_server() -> Iterator[RedisServer]:
    """A throwaway ``redis-server`` on a free port, for the whole session."""
    from alsek.testing.server import RedisServer

    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def alsek_redis_url(request: pytest.FixtureRequest) -> str:
    """``$ALSEK_TEST_REDIS_URL``, or the URL of ``alsek_redis_server``."""
    configured = os.environ.get(REDIS_URL_VARIABLE)
    if configured:
        return configured
    server: RedisServer = request.getfixturevalue("alsek_redis_server")
    return server.url


@pytest.fixture
def alsek_worker() -> Iterator[Callable[..., InProcessWorker]]:
    """Start an in-process worker: ``alsek_worker(*tasks, concurrency=8, **pool_options)``.

    Every worker started in the test is stopped when it ends.
    """
    from alsek.testing.worker import InProcessWorker

    started: list[InProcessWorker] = []

    def start(*tasks: Any, concurrency: int = 8, **pool_options: Any) -> InProcessWorker:
        worker = InProcessWorker(*tasks, concurrency=concurrency, **pool_options).start()
        started.append(worker)
        return worker

    yield start
    for worker in reversed(started):
        worker.stop()
