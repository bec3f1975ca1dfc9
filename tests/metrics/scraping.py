"""Reading what a process serves on ``/metrics``: every sample, and the URL it announced."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.polling import eventually
from tests.subprocesses import SessionProcess

#: Samples by metric name and sorted labels.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample served at ``url``, by name and sorted labels."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def announced_url(process: SessionProcess, output: Path) -> str:
    """The ``/metrics`` URL ``process`` wrote to ``output`` (its stdout or stderr) at start."""

    def written() -> str | None:
        assert process.alive, process.output()
        found = re.search(r"on (http://\S+/metrics)", output.read_text())
        return found.group(1) if found else None

    return str(eventually(written, 30, f"the metrics URL of {process.name}"))
