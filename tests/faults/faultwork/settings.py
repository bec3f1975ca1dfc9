"""Where the served tasks live and how they are configured, shared by sync and async twins.

A pool subprocess reads ``ALSEK_FAULTS_URL`` (alsek's Redis, db 0) and ``ALSEK_FAULTS_NS`` (the
test's namespace); the probe reads its own variable (see ``probe``).
"""

from __future__ import annotations

import os
from typing import Any

from alsek.core.backoff import ConstantBackoff

URL_VAR = "ALSEK_FAULTS_URL"
NAMESPACE_VAR = "ALSEK_FAULTS_NS"
#: ``thread`` (default) or ``process``: the mechanism of the served sync tasks.
MECHANISM_VAR = "ALSEK_FAULTS_MECHANISM"
#: Which release of the tasks a pool runs: ``1`` (default), or ``2``, which adds ``added`` (the
#: rolling-deploy scenario). Producers know every task.
VERSION_VAR = "ALSEK_FAULTS_VERSION"
#: How far (ms) a pool's host clock is off (the skewed-clock scenario); default 0.
CLOCK_SKEW_VAR = "ALSEK_FAULTS_CLOCK_SKEW_MS"
#: The queue of every served task.
QUEUE = "faults"
#: Results and failure records live this long (ms): long enough for the test, never forever.
RESULT_TTL_MS = 60 * 60 * 1000
#: Statuses live this long (ms) after their last write.
STATUS_TTL_MS = 60 * 60 * 1000
#: Retries of the counting tasks: enough for a message caught in flight by several kills.
COUNT_MAX_RETRIES = 20
#: Retries of the task that crashes its process on every attempt.
CRASH_MAX_RETRIES = 2


def location() -> tuple[str, str]:
    """(Redis URL, namespace) of the test that started this process."""
    return os.environ[URL_VAR], os.environ[NAMESPACE_VAR]


def mechanism() -> str:
    """The mechanism of the served sync tasks (a process pool serves ``process`` tasks)."""
    return os.environ.get(MECHANISM_VAR, "thread")


def version() -> int:
    """The release of the tasks this pool runs (see ``VERSION_VAR``)."""
    return int(os.environ.get(VERSION_VAR, "1"))


def tracked_options(max_retries: int) -> dict[str, Any]:
    """Options of a task whose messages have a status and a result (tracker/store added by the
    caller): no backoff, so a lost or failed attempt runs again at once."""
    return {
        "queue": QUEUE,
        "max_retries": max_retries,
        "backoff": None,
        "default_result_ttl": RESULT_TTL_MS,
    }


#: Retry backoff (ms) of ``flaky``: its second attempt may start no sooner.
FLAKY_BACKOFF_MS = 1_000


def backed_off_options() -> dict[str, Any]:
    """Options of ``flaky``: one retry, after ``FLAKY_BACKOFF_MS``."""
    backoff = ConstantBackoff(FLAKY_BACKOFF_MS, floor=FLAKY_BACKOFF_MS, ceiling=FLAKY_BACKOFF_MS)
    return {
        "queue": QUEUE,
        "max_retries": 1,
        "backoff": backoff,
        "default_result_ttl": RESULT_TTL_MS,
    }
