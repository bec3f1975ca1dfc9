"""Queue messages for a benchmark app: ``python -m apps.submit MODULE TASK COUNT``.

``MODULE`` is one of the apps (``apps.alsek_threads``, ``peers.dramatiq_app``...); each defines
``submit(task_name, count)`` with its framework's usual API. ``bench/pools.py`` runs this with
the app's virtualenv before it starts the worker, so submitting is never timed.
"""

from __future__ import annotations

import argparse
import importlib


def main() -> None:
    """Parse the command line and submit."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("module", help="the app module, e.g. apps.alsek_threads")
    parser.add_argument("task", choices=["noop", "sleep_1ms"])
    parser.add_argument("count", type=int)
    options = parser.parse_args()
    importlib.import_module(options.module).submit(options.task, options.count)


if __name__ == "__main__":
    main()
