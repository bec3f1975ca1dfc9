"""``alsek thread-pool`` / ``process-pool`` / ``async-pool``: serve a package, stop on SIGTERM,
explain bad input in one line."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from poolharness import COMMON_CLI_OPTIONS, Lab, PoolKind
from poolwork import pools

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
    assert "Queue 'cli': add, gauged, sleepy, slow_first" in log
    assert "Traceback" not in log


def test_help_lists_every_option(lab: Lab) -> None:
    """In kebab-case; the spec's snake_case spellings (which the other tests use) stay
    accepted, out of the help."""
    shown = lab.cli("--help")
    assert shown.returncode == 0
    for option in (*COMMON_CLI_OPTIONS, *lab.kind.options):
        kebab = option.replace("_", "-")
        assert kebab in shown.stdout, f"{kebab} missing from {lab.kind.command} --help"
        if kebab != option:
            assert option not in shown.stdout, f"{option} shown by {lab.kind.command} --help"


#: A module whose only task is of the kind the pool cannot run (``{work}``: its work module).
OTHER_KIND_SOURCE = """\
from poolwork import {work}, probe

broker, _, _ = {work}.components(*probe.location())
add = {work}.build_task("add", broker)
"""


@pytest.fixture
def bad_packages(tmp_path: Path, pool_kind: PoolKind) -> Path:
    """A directory holding ``broken_tasks``, a package whose import raises, and
    ``other_kind_tasks``, whose one task (``add``) is sync for an async pool, async otherwise."""
    package = tmp_path / "broken_tasks"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('the settings are wrong')\n")
    work = pools.other_work_module(pool_kind.name).__name__.rpartition(".")[2]
    (tmp_path / "other_kind_tasks.py").write_text(OTHER_KIND_SOURCE.format(work=work))
    return tmp_path


@pytest.mark.parametrize(
    ("package", "expected"),
    [
        ("no_such_package_anywhere", r"Cannot import 'no_such_package_anywhere'"),
        ("json", r"No (async )?tasks found in 'json'"),
        ("broken_tasks", r"the settings are wrong"),
        (
            "other_kind_tasks",
            r"No (async )?tasks found in 'other_kind_tasks'; it has (sync|async) tasks \(add\): "
            r"serve them with (thread-pool or process-pool|async-pool)",
        ),
    ],
)
def test_a_bad_package_is_one_line_on_stderr(
    lab: Lab, bad_packages: Path, package: str, expected: str
) -> None:
    failed = lab.cli(package, path=bad_packages)
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert failed.returncode != 0
    assert len(lines) == 1, failed.stderr
    assert re.search(expected, lines[0]), lines[0]
    assert "Traceback" not in failed.stderr
