"""What a benchmark worker reads from its environment: where Redis is and where to write.

``bench/pools.py`` sets these variables for every worker and submitter it starts, alsek's and
the peers' alike; this module imports nothing but the standard library, so that the peers'
virtualenv (without alsek) can import it too.
"""

from __future__ import annotations

import os

#: Redis URL of the run.
URL_VAR = "BENCH_POOLS_REDIS_URL"
#: Prefix of every key of the run (alsek's namespace; the peers' queues are named under it).
NAMESPACE_VAR = "BENCH_POOLS_NAMESPACE"
#: ``"1"``: alsek tasks write their status and result (tracking on).
TRACKING_VAR = "BENCH_POOLS_TRACKING"

#: The one queue every framework's two benchmark tasks share.
QUEUE = "bench"
#: Result TTL (ms) of tracked tasks: long enough to outlast a run, short enough to clean up.
RESULT_TTL_MS = 600_000


def redis_url() -> str:
    """The run's Redis URL (``redis://localhost:6379/0`` outside a benchmark)."""
    return os.environ.get(URL_VAR, "redis://localhost:6379/0")


def namespace() -> str:
    """The run's key prefix."""
    return os.environ.get(NAMESPACE_VAR, "alsek-bench")


def tracking() -> bool:
    """Whether alsek tasks record their status and result."""
    return os.environ.get(TRACKING_VAR) == "1"


def completions_key(run_namespace: str | None = None) -> str:
    """The key prefix of the completion tally (see ``completions``) of this or another run."""
    return f"{run_namespace or namespace()}:completions"
