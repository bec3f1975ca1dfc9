"""``--queues`` may name only queues that the command's tasks use: anything else is a one-line
error naming the queues it could consume, before anything starts."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from alsek.cli.cli import main
from tests.cli.test_cli_defaults import COMMANDS, process_state, record_runs, tasks_module

__all__ = ["process_state", "tasks_module"]  # fixtures, used by name


@pytest.mark.usefixtures("process_state")
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_queue_no_task_uses_is_a_one_line_error(
    command: str, tasks_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = record_runs(command, monkeypatch)
    queues = "alsek_queue, alsek_queeu"
    result = CliRunner().invoke(main, [command, tasks_module, "--queues", queues])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        "Error: --queues names 'alsek_queeu', which none of the tasks this pool runs uses; "
        "it could consume 'alsek_queue'"
    ]
    assert built == []


@pytest.mark.usefixtures("process_state")
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_queues_the_tasks_use_are_accepted(
    command: str, tasks_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = record_runs(command, monkeypatch)
    result = CliRunner().invoke(main, [command, tasks_module, "--queues", "alsek_queue"])
    assert result.exit_code == 0, result.output
    (pool,) = built
    assert pool.queues == ["alsek_queue"]
