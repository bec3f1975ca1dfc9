"""What the failover pools and the test that drives them agree on (read from the environment,
so that pool subprocesses see the test's choices)."""

from __future__ import annotations

import os

URL_VAR = "ALSEK_FAILOVER_URL"
NAMESPACE_VAR = "ALSEK_FAILOVER_NS"
EVIDENCE_VAR = "ALSEK_FAILOVER_EVIDENCE_URL"
WAIT_REPLICAS_VAR = "ALSEK_FAILOVER_WAIT_REPLICAS"

#: The queues the load spreads over (on a 3-master cluster they live on every master).
QUEUES = tuple(f"failover-{index}" for index in range(6))
#: Leases of the failover pools (they renew every third of it). Longer than any failover here
#: (2-4 s, more on a loaded machine): a lease shorter than the failover runs out before any
#: client can reach the promoted replica, for every message in flight at the kill, and so does
#: the reply of a claim whose answer the kill cut off (Redis keeps it for one lease). With the
#: tasks' ``max_retries=0`` each such lease is then a message failed for good as "worker lost",
#: run or not (the loss issue 13 reports: messages claimed before a kill, never started, failed).
#: That tests a lease no deployment should choose, not the failover (the default is 30 s).
LEASE_TTL_MS = 10_000
#: How long a task works, so that attempts are in flight when a master dies.
WORK_SECONDS = 0.002
#: The longest a durable write waits for its replica (ms).
WAIT_TIMEOUT_MS = 1_000


def url() -> str:
    """The Redis URL of the pools (a cluster or a Sentinel service)."""
    return os.environ[URL_VAR]


def namespace() -> str:
    """The test's namespace."""
    return os.environ[NAMESPACE_VAR]


def evidence_url() -> str:
    """The server where tasks record their runs (not the one that fails over)."""
    return os.environ[EVIDENCE_VAR]


def wait_replicas() -> int:
    """``Broker(wait_replicas=...)`` of the pools and the producer."""
    return int(os.environ.get(WAIT_REPLICAS_VAR, "0"))
