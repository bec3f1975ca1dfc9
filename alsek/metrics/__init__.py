"""Prometheus metrics (the ``alsek[metrics]`` extra, prometheus-client).

* A pool's own metrics (``--metrics-port`` or ``metrics_port=``): what its workers start, finish,
  retry and dead-letter, run times and queue waits, served on ``/metrics``
  (``alsek.metrics.pool``). Every process of the pool counts into one temporary directory
  (prometheus-client's multiprocess mode), summed at scrape time.
* ``alsek metrics``: a standalone exporter reading Redis at scrape time through
  ``alsek.admin`` (queue depths, paused queues, live workers and their slots;
  ``alsek.metrics.exporter``).

Every name, label and bucket is in ``alsek.metrics.names`` (see ``docs/observability.md``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["require_prometheus"]


def require_prometheus() -> Any:
    """The ``prometheus_client`` module, or an ``ImportError`` saying how to install it."""
    try:
        import prometheus_client
    except ImportError as error:
        raise ImportError(
            "alsek's Prometheus metrics need prometheus-client: pip install 'alsek[metrics]'"
        ) from error
    return prometheus_client
