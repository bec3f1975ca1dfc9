"""Let user code know it runs inside an alsek worker pool."""

from __future__ import annotations

import logging
import os

from alsek.defaults import ALSEK_WORKER_POOL_ENV_VAR

log = logging.getLogger(__name__)


def set_alsek_worker_pool_env_var() -> None:
    """Set ``ALSEK_WORKER_POOL=true`` in this process; worker child processes call it at start.

    An existing value is left untouched (and logged), since someone set it on purpose.
    """
    if ALSEK_WORKER_POOL_ENV_VAR in os.environ:
        log.warning(
            "%s is already set (to %r); leaving it as is.",
            ALSEK_WORKER_POOL_ENV_VAR,
            os.environ[ALSEK_WORKER_POOL_ENV_VAR],
        )
        return
    os.environ[ALSEK_WORKER_POOL_ENV_VAR] = "true"
