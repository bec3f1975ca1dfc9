"""Tasks served by ``alsek thread-pool tlswork.tasks`` over TLS with an ACL user.

The URL (``rediss://user:password@...`` or ``rediss+cluster://...``) and namespace come from the
environment; nothing else tells the pool how to connect, so every connection it and its process
groups open must carry the URL's TLS settings and credentials.
"""

from __future__ import annotations

import os

from alsek.core.broker import Broker
from alsek.core.status import StatusTracker
from alsek.core.task import Task
from alsek.storage.backends import RedisBackend
from alsek.storage.result import ResultStore

URL_VAR = "ALSEK_TLS_URL"
NAMESPACE_VAR = "ALSEK_TLS_NS"
QUEUE = "secure"


def double(x: int) -> int:
    """The work: nothing that needs Redis itself."""
    return 2 * x


def build(url: str, namespace: str) -> Task:
    """The task, with a status tracker and a result store on the same backend."""
    backend = RedisBackend(url, namespace=namespace)
    return Task(
        double,
        Broker(backend),
        queue=QUEUE,
        status_tracker=StatusTracker(backend),
        result_store=ResultStore(backend),
        max_retries=0,
    )


if URL_VAR in os.environ:  # a pool process: serve the task
    double_task = build(os.environ[URL_VAR], os.environ[NAMESPACE_VAR])
