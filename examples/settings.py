"""Where the example tasks keep their messages: ``ALSEK_REDIS_URL`` (default: localhost)."""

from __future__ import annotations

import os

from alsek.core.broker import Broker
from alsek.core.status import StatusTracker
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.storage.result import ResultStore

REDIS_URL = os.environ.get("ALSEK_REDIS_URL", "redis://localhost:6379/0")

backend = RedisBackend(REDIS_URL, namespace="alsek-demo")
broker = Broker(backend)
status_tracker = StatusTracker(backend)
result_store = ResultStore(backend)
