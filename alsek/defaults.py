"""Default values, in one place. Durations are milliseconds unless the name says otherwise."""

from __future__ import annotations

import signal

DEFAULT_QUEUE = "alsek_queue"
DEFAULT_NAMESPACE = "alsek"
DEFAULT_MAX_RETRIES = 3
DEFAULT_TASK_TIMEOUT = 60 * 60 * 1000
DEFAULT_MECHANISM = "thread"
DEFAULT_TTL = 7 * 24 * 60 * 60 * 1000

#: Lease on a claimed message: short, and renewed while the task runs (every third of it,
#: ``alsek.core.worker.core.RENEWALS_PER_LEASE``).
DEFAULT_LEASE_TTL = 30 * 1000

ALSEK_WORKER_POOL_ENV_VAR = "ALSEK_WORKER_POOL"

QUEUES_NAMESPACE_KEY = "queues"
TASK_NAMESPACE_KEY = "tasks"
MESSAGES_NAMESPACE_KEY = "messages"
PRIORITY_NAMESPACE_KEY = "priority"
DLQ_NAMESPACE_KEY = "dlq"

DEFAULT_STOP_SIGNALS: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)

LOGGING_FORMAT = (
    "[%(asctime)s.%(msecs)03d] [%(processName)s] [%(threadName)s] "
    "[%(levelname)s] %(name)s: %(message)s"
)
LOGGING_DATEFMT = "%Y-%m-%d %H:%M:%S"

_GET_RESULT_WAIT_SLEEP_INTERVAL = 500
