"""``alsek dashboard``: bad options are one-line errors; it serves the dashboard of --url."""

from __future__ import annotations

import signal
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import states
from click.testing import CliRunner
from opsfixtures import ALSEK_COMMAND

from alsek.cli.cli import main
from alsek.testing.processes import free_port
from tests.polling import eventually
from tests.subprocesses import SessionProcess


def test_a_malformed_auth_is_a_one_line_error(redis_url: str) -> None:
    done = CliRunner().invoke(main, ["dashboard", "--url", redis_url, "--auth", "admin"])
    assert done.exit_code == 1
    assert "auth must be 'user:password'" in done.output
    assert "Traceback" not in done.output


def test_a_package_and_a_url_together_are_refused(redis_url: str) -> None:
    done = CliRunner().invoke(main, ["dashboard", "opswork", "--url", redis_url])
    assert done.exit_code == 2
    assert "not both" in done.output


@pytest.mark.slow  # a uvicorn server in a subprocess
def test_it_serves_the_dashboard_of_a_url_read_only_with_a_token(
    ops: ModuleType,
    ops_env: dict[str, str],
    redis_url: str,
    namespace: str,
    tmp_path: Path,
) -> None:
    states.ready(ops, 2)
    port = free_port()
    env = {**ops_env, "ALSEK_DASHBOARD_TOKEN": "t0ken"}
    args = [ALSEK_COMMAND, "dashboard", "--url", redis_url, "--namespace", namespace]
    args += ["--port", str(port), "--read-only", "--log-level", "warning"]
    server = SessionProcess("dashboard", args, env, tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        headers = {"authorization": "Bearer t0ken"}

        def overview() -> httpx.Response | None:
            assert server.alive, server.output()
            try:
                return httpx.get(base + "/", headers=headers, timeout=5)
            except httpx.TransportError:
                return None

        page = eventually(overview, 30, "the dashboard answers")
        assert page.status_code == 200
        assert 'href="/queues/ops"' in page.text
        assert httpx.get(base + "/", timeout=5).status_code == 401
        post = httpx.post(base + "/actions/pause", data={"queue": "ops"}, headers=headers)
        assert post.status_code == 403
        assert "read-only" in server.stderr() + server.output()
        server.signal(signal.SIGINT)
        assert server.wait(30) == 0, server.output()
    finally:
        server.kill_session()
