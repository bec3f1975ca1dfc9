"""The operator commands: JSON with exactly the API's keys, tables otherwise, one-line errors."""

from __future__ import annotations

import json
import signal
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import states
from click.testing import CliRunner, Result
from opsfixtures import Pools

from alsek.admin import MessageInfo, QueueStats, TaskStats, WorkerInfo
from alsek.cli.cli import main
from tests.polling import eventually


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def as_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json").stdout)


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def keys_of(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


@pytest.mark.slow  # a pool in a subprocess
@pytest.mark.usefixtures("ops")
def test_workers_json_has_the_worker_info_keys(pools: Pools) -> None:
    pool = pools.start("thread")
    listed = eventually(lambda: as_json("workers", "opswork"), 30, "the pool listed")
    assert [set(worker) for worker in listed] == [keys_of(WorkerInfo)]
    assert listed[0]["pid"] == pool.pid and listed[0]["tasks"] == ["add", "boom", "side", "sleepy"]
    assert "busy" in ok("workers", "--app", "opswork").stdout
    pool.signal(signal.SIGTERM)
    assert pool.wait(30) == 0, pool.output()
    assert as_json("workers", "opswork") == []


def test_messages_lists_a_page_as_table_or_json(ops: ModuleType) -> None:
    sent = states.ready(ops, 3)
    listed = as_json("messages", "ops", "--app", "opswork", "--limit", "2")
    assert [set(item) for item in listed] == [keys_of(MessageInfo)] * 2
    assert [item["uuid"] for item in listed] == [m.uuid for m in sent[:2]]
    assert listed[0]["state"] == "ready" and listed[0]["data"]["args"] == [0, 1]
    table = ok("messages", "ops", "--app", "opswork").stdout
    assert all(m.uuid in table for m in sent)


def test_an_unknown_queue_is_one_line(ops: ModuleType) -> None:
    states.ready(ops, 1)
    line = one_line_error(run("messages", "nope", "--app", "opswork"))
    assert "Unknown queue 'nope'" in line and "ops" in line


def test_dlq_commands_round_trip(ops: ModuleType) -> None:
    failed = states.dead(ops, 3)
    listed = as_json("dlq", "list", "--app", "opswork")
    assert [item["uuid"] for item in listed] == [m.uuid for m in failed]
    assert listed[0]["error"]["type"] == "ValueError"
    assert as_json("dlq", "requeue", failed[0].uuid, "--app", "opswork") == {"count": 1}
    assert as_json("dlq", "requeue", "--all", "--task", "boom", "--app", "opswork", "--yes") == {
        "count": 2
    }
    assert as_json("dlq", "list", "--app", "opswork") == []
    states.dead(ops, 2, "sleepy")
    assert as_json("dlq", "purge", "--all", "--queue", "ops", "--app", "opswork", "-y") == {
        "count": 2
    }


def test_dlq_requeue_needs_uuids_or_all(ops: ModuleType) -> None:
    states.dead(ops, 1)
    result = run("dlq", "requeue", "--app", "opswork")
    assert result.exit_code == 2 and "--all" in result.output
    assert len(as_json("dlq", "list", "--app", "opswork")) == 1


def test_submit_prints_the_uuid_of_a_queued_message(ops: ModuleType) -> None:
    uuid = ok("submit", "opswork", "add", "--args", "[2, 3]", "--priority", "4").stdout.strip()
    [queued] = as_json("messages", "ops", "--app", "opswork")
    assert queued["uuid"] == uuid
    assert (queued["task"], queued["data"]["args"], queued["data"]["priority"]) == (
        "add",
        [2, 3],
        4,
    )
    sent = as_json("submit", "opswork", "add", "--kwargs", '{"a": 1, "b": 2}', "--delay", "60000")
    assert sent["queue"] == "ops"
    assert [
        m["uuid"] for m in as_json("messages", "ops", "--state", "delayed", "--app", "opswork")
    ] == [sent["uuid"]]


@pytest.mark.usefixtures("ops")
@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--args", "[1, 2"], "--args"),
        (["--args", '{"a": 1}'], "must be a JSON list"),
        (["--kwargs", "[1]"], "must be a JSON dict"),
    ],
)
def test_submit_refuses_bad_json(arguments: list[str], expected: str) -> None:
    result = run("submit", "opswork", "add", *arguments)
    assert result.exit_code == 2 and expected in result.output


@pytest.mark.usefixtures("ops")
def test_submit_names_the_tasks_of_the_package() -> None:
    line = one_line_error(run("submit", "opswork", "nope"))
    assert "has no task 'nope'" in line and "add, boom, crunch, ping, side, sleepy" in line


def test_an_unreachable_redis_is_one_line_with_the_password_masked() -> None:
    line = one_line_error(run("workers", "--url", "redis://user:s3cret@127.0.0.1:1/0"))
    assert "Cannot reach Redis at redis://user:***@127.0.0.1:1/0" in line
    assert "s3cret" not in line


def test_a_package_and_a_url_together_are_refused() -> None:
    result = run("workers", "opswork", "--url", "redis://localhost:6379/0")
    assert result.exit_code == 2 and "not both" in result.output


ASYNC_ONLY = """\
from alsek import task
from alsek.core.broker import AsyncBroker
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend

broker = AsyncBroker(AsyncRedisBackend({url!r}, namespace={namespace!r}))


@task(broker, queue="pings")
async def ping() -> str:
    return "pong"
"""


def test_a_package_with_only_async_tasks_is_operated_through_an_async_admin(
    redis_url: str, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"async_only_{namespace.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(ASYNC_ONLY.format(url=redis_url, namespace=namespace))
    monkeypatch.syspath_prepend(str(tmp_path))
    uuid = ok("submit", name, "ping").stdout.strip()
    assert [m["uuid"] for m in as_json("messages", "pings", "--app", name)] == [uuid]


# -- queues, info, message, queue actions, revoke ------------------------------------------------


def test_queues_json_has_the_queue_stats_keys(ops: ModuleType) -> None:
    states.ready(ops, 2)
    states.dead(ops, 1)
    [stats] = as_json("queues", "opswork")
    assert set(stats) == keys_of(QueueStats)
    assert (stats["queue"], stats["ready"], stats["dead"]) == ("ops", 2, 1)
    assert [set(task) for task in stats["tasks"]] == [keys_of(TaskStats)] * 2
    table = ok("queues", "--app", "opswork").stdout
    assert "ops" in table and "no worker serves it" in table


def test_info_shows_queues_and_workers_and_refreshes(ops: ModuleType) -> None:
    states.ready(ops, 1)
    shown = ok("info", "opswork").stdout
    assert "Queues" in shown and "Workers" in shown and "(no live worker)" in shown
    assert set(as_json("info", "opswork")) == {"queues", "workers"}


def test_info_interval_refreshes_until_interrupted(ops_env: dict[str, str], tmp_path: Path) -> None:
    import subprocess
    import sys

    alsek = str(Path(sys.executable).with_name("alsek"))
    process = subprocess.Popen(
        [alsek, "info", "opswork", "--interval", "0.2", "--json"],
        env=ops_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = [process.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=60)  # drains the pipes while it stops
    assert process.returncode == 0, errors
    assert all(set(json.loads(line)) == {"queues", "workers"} for line in lines)


def test_message_json_has_the_message_info_keys_and_a_timeline(ops: ModuleType) -> None:
    [dead] = states.dead(ops, 1)
    found = as_json("message", dead.uuid, "--app", "opswork")
    assert set(found) == keys_of(MessageInfo)
    assert (found["state"], found["error"]["type"]) == ("dead", "ValueError")
    assert [h["value"] for h in found["history"]] == ["SUBMITTED", "RUNNING"]
    shown = ok("message", dead.uuid, "--app", "opswork").stdout
    assert "Status history" in shown and "SUBMITTED" in shown and "Traceback: ..." in shown


def test_an_unknown_uuid_is_one_line(ops: ModuleType) -> None:
    line = one_line_error(run("message", "nope", "--app", "opswork"))
    assert "No message with uuid 'nope'" in line


def test_queue_pause_resume_and_purge(ops: ModuleType) -> None:
    states.ready(ops, 3)
    assert as_json("queue", "pause", "ops", "--app", "opswork") == {"queue": "ops", "paused": True}
    assert as_json("queues", "opswork")[0]["paused"] is True
    assert "Resumed 'ops'" in ok("queue", "resume", "ops", "--app", "opswork").stdout
    assert as_json("queue", "purge", "ops", "--app", "opswork", "--yes") == {"count": 3}
    assert one_line_error(run("queue", "pause", "nope", "--app", "opswork")).startswith(
        "Error: Unknown queue 'nope'"
    )


def test_revoke_by_uuid(ops: ModuleType) -> None:
    [message] = states.ready(ops, 1)
    assert as_json("revoke", message.uuid, "--app", "opswork", "--yes") == {
        "uuid": message.uuid,
        "revoked": True,
    }
    assert "is queued or running" in one_line_error(
        run("revoke", message.uuid, "--app", "opswork", "--yes")
    )


def test_destructive_commands_ask_on_a_terminal_unless_yes(
    ops: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alsek.cli import manage

    monkeypatch.setattr(manage, "on_terminal", lambda: True)
    states.ready(ops, 2)
    refused = CliRunner().invoke(main, ["queue", "purge", "ops", "--app", "opswork"], input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert len(as_json("messages", "ops", "--app", "opswork")) == 2
    accepted = CliRunner().invoke(main, ["queue", "purge", "ops", "--app", "opswork"], input="y\n")
    assert accepted.exit_code == 0 and "2 ready messages deleted" in accepted.output
