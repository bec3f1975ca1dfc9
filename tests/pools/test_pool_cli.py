"""``alsek thread-pool`` / ``alsek process-pool``: serve a package, stop on SIGTERM, explain
bad input in one line."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from poolharness import COMMON_CLI_OPTIONS, Lab

from alsek.core.status import TaskStatus

pytestmark = pytest.mark.slow  # every test starts the command in a subprocess


def test_the_command_serves_a_package_until_sigterm(lab: Lab) -> None:
    add = lab.served()["add"]
    messages = [add.generate(args=(i, 1)) for i in range(20)]
    pool = lab.cli_pool(2)
    assert [lab.store.get(m, timeout=20_000) for m in messages] == [i + 1 for i in range(20)]
    pool.signal(signal.SIGTERM)
    assert pool.wait(15) == 0, pool.output()
    assert all(lab.tracker.get(m).value is TaskStatus.SUCCEEDED for m in messages)
    log = pool.stderr()
    assert "Queue 'cli': add, sleepy, slow_first" in log
    assert "Traceback" not in log


def test_help_lists_every_option(lab: Lab) -> None:
    shown = lab.cli("--help")
    assert shown.returncode == 0
    for option in (*COMMON_CLI_OPTIONS, *lab.kind.options):
        assert option in shown.stdout, f"{option} missing from {lab.kind.command} --help"


@pytest.fixture
def broken_package(tmp_path: Path) -> Path:
    """A directory holding ``broken_tasks``, a package whose import raises."""
    package = tmp_path / "broken_tasks"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('the settings are wrong')\n")
    return tmp_path


@pytest.mark.parametrize(
    ("package", "expected"),
    [
        ("no_such_package_anywhere", "Cannot import 'no_such_package_anywhere'"),
        ("json", "No tasks found in 'json'"),
        ("broken_tasks", "the settings are wrong"),
    ],
)
def test_a_bad_package_is_one_line_on_stderr(
    lab: Lab, broken_package: Path, package: str, expected: str
) -> None:
    failed = lab.cli(package, path=broken_package)
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert failed.returncode != 0
    assert len(lines) == 1, failed.stderr
    assert expected in lines[0]
    assert "Traceback" not in failed.stderr
