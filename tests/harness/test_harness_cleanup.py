"""Nothing outlives the harness: stopped groups leave no process or directory, and servers die
with the interpreter that started them, whether it exits or is SIGKILLed."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

import pytest
from polling import eventually

from alsek.testing import SentinelServers

ABANDON = Path(__file__).with_name("abandon_servers.py")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its new parent to reap it counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Abandoned(TypedDict):
    """What the child left behind (see abandon_servers.py)."""

    pids: list[int]
    directories: list[str]
    proxy_port: int


def _abandon_servers(how: str) -> Abandoned:
    child = subprocess.run(
        [sys.executable, str(ABANDON), how], capture_output=True, text=True, timeout=60
    )
    assert child.stdout, f"the child printed nothing: {child.stderr}"
    report: Abandoned = json.loads(child.stdout.splitlines()[0])
    return report


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_stopping_a_group_leaves_no_process_or_directory() -> None:
    with SentinelServers(flavour="redis", sentinels=1) as group:
        members = [*group.servers, *group.sentinels]
        pids = [member.pid for member in members]
        directories = [member.directory for member in members]
        assert all(pid is not None and _alive(pid) for pid in pids)
    assert not any(_alive(pid) for pid in pids if pid is not None)
    assert not any(directory is not None and directory.exists() for directory in directories)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_servers_left_running_are_stopped_and_removed_at_interpreter_exit() -> None:
    report = _abandon_servers("exit")
    assert not any(_alive(pid) for pid in report["pids"])
    assert not any(Path(directory).exists() for directory in report["directories"])
    assert not _accepts(report["proxy_port"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal")
def test_servers_die_with_a_sigkilled_interpreter() -> None:
    report = _abandon_servers("sigkill")
    try:
        eventually(
            lambda: not any(_alive(pid) for pid in report["pids"]),
            what="servers dying with their parent",
        )
    finally:
        for directory in report["directories"]:
            shutil.rmtree(directory, ignore_errors=True)  # nobody was left to remove them
