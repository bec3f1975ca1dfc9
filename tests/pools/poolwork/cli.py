"""The tasks ``alsek <kind>-pool poolwork.cli`` serves, configured from the environment.

``ALSEK_POOLS_KIND`` picks the pool kind (and so the task mechanism); the broker, status tracker
and result store use the probe's Redis and namespace. Importing this module needs them set.
"""

from __future__ import annotations

import os

from poolwork import pools, probe

KIND = os.environ.get(pools.KIND_VAR, "thread")
_work = pools.work_module(KIND)
broker, status_tracker, result_store = _work.components(*probe.location())
TASKS = pools.served_tasks(_work, KIND, broker, status_tracker, result_store)
globals().update(TASKS)  # module attributes, where ``collect_tasks`` finds them
