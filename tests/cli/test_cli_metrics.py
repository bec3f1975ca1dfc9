"""``alsek metrics``: the exporter serves, over HTTP, what Redis holds at each scrape."""

from __future__ import annotations

import re
import signal
import socket
import urllib.request
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner
from opsfixtures import ALSEK_COMMAND, Pools
from prometheus_client.parser import text_string_to_metric_families

from alsek.admin import Admin
from alsek.cli.cli import main
from tests.polling import eventually
from tests.subprocesses import SessionProcess

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


def served_url(process: SessionProcess) -> str:
    """The URL an ``alsek metrics`` subprocess printed at start."""

    def printed() -> str | None:
        assert process.alive, process.output()
        found = re.search(r"on (http://\S+/metrics)", process.stdout_path.read_text())
        return found.group(1) if found else None

    return str(eventually(printed, 30, "the exporter's URL"))


def exporter(ops_env: dict[str, str], tmp_path: Path, *args: str) -> SessionProcess:
    return SessionProcess("metrics", [ALSEK_COMMAND, "metrics", *args], ops_env, tmp_path)


@pytest.mark.slow  # the exporter and a pool in subprocesses
def test_the_exporter_serves_queue_depths_pauses_and_workers(
    ops: ModuleType, ops_env: dict[str, str], pools: Pools, tmp_path: Path
) -> None:
    for number in range(3):
        ops.add.generate(args=(number, 1))
    Admin(ops.broker).pause(ops.SIDE_QUEUE)
    ops.side.generate(args=(1,))
    process = exporter(ops_env, tmp_path, "opswork", "--port", "0", "--host", "127.0.0.1")
    try:
        url = served_url(process)
        samples = scrape(url)
        assert samples[("alsek_redis_up", ())] == 1
        ready = ("alsek_queue_messages", (("queue", "ops"), ("state", "ready")))
        assert samples[ready] == 3
        assert samples[("alsek_queue_messages", (("queue", "ops"), ("state", "dead")))] == 0
        assert samples[("alsek_queue_paused", (("queue", "side"),))] == 1
        assert samples[("alsek_queue_paused", (("queue", "ops"),))] == 0
        assert samples[("alsek_workers", (("kind", "thread"),))] == 0
        assert samples[("alsek_queue_oldest_ready_seconds", (("queue", "ops"),))] >= 0
        pool = pools.start("thread")
        # Read at each scrape: the pool shows up and the queue drains.
        live = eventually(
            lambda: (s := scrape(url))[("alsek_workers", (("kind", "thread"),))] == 1
            and s[ready] == 0
            and s,
            30,
            "the pool seen and the queue drained",
        )
        slots = {
            labels: value for (name, labels), value in live.items() if name == "alsek_worker_slots"
        }
        assert {dict(labels)["state"] for labels in slots} == {"busy", "idle"}
        assert sum(slots.values()) == 2  # --n_threads 2 --n_processes 1
        pool.signal(signal.SIGTERM)
        assert pool.wait(30) == 0, pool.output()
    finally:
        process.signal(signal.SIGTERM)
        assert process.wait(10) == 0, process.output()


@pytest.mark.slow  # the exporter in a subprocess
def test_an_unreachable_redis_is_a_down_gauge_not_a_failed_scrape(
    ops_env: dict[str, str], tmp_path: Path
) -> None:
    args = ("--url", "redis://127.0.0.1:1/0", "--port", "0", "--host", "127.0.0.1")
    process = exporter(ops_env, tmp_path, *args)
    try:
        samples = scrape(served_url(process))
        assert samples == {("alsek_redis_up", ()): 0}
    finally:
        process.signal(signal.SIGTERM)
        process.wait(10)


def test_a_taken_port_is_a_one_line_error(redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = CliRunner().invoke(
            main, ["metrics", "--url", redis_url, "--port", port, "--host", "127.0.0.1"]
        )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "--port" in lines[0], lines
