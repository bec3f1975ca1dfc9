"""Serving a registry on ``/metrics`` over HTTP, for a pool and for ``alsek metrics`` alike."""

from __future__ import annotations

import logging
from typing import Any

from alsek.metrics import require_prometheus

__all__ = ["DEFAULT_METRICS_HOST", "MetricsServer"]

log = logging.getLogger(__name__)

#: Where metrics are served by default: every interface, as Prometheus exporters do, so a
#: Prometheus server on another host (or a pod's scraper) can reach them.
DEFAULT_METRICS_HOST = "0.0.0.0"


class MetricsServer:
    """``registry`` served on ``http://host:port/metrics`` by a daemon thread until ``close``.

    Args:
        registry: the prometheus-client registry (or collector) to serve.
        port: the TCP port (0: any free one; ``port`` then tells which).
        host: the address to bind.

    Raises:
        OSError: the address cannot be bound (the port is taken, the host is not this one's).
    """

    def __init__(self, registry: Any, port: int, host: str = DEFAULT_METRICS_HOST) -> None:
        prometheus = require_prometheus()
        self._server, self._thread = prometheus.start_http_server(port, host, registry=registry)
        self.host = host
        self.port = int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Where the metrics are."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
