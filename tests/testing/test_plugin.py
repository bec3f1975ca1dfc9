"""The pytest plugin, as a user's suite sees it: a fresh pytest process in a directory of its
own finds the fixtures through alsek's ``pytest11`` entry point, without any conftest."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: How long one inner pytest run may take (it starts a Python process, maybe a server).
RUN_SECONDS = 120


def run_pytest(
    directory: Path, source: str, *options: str, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Write ``source`` as a test module in ``directory`` and run pytest on it."""
    (directory / "test_user.py").write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if k != "ALSEK_TEST_REDIS_URL"}
    if url is not None:
        env["ALSEK_TEST_REDIS_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, "."],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )


def test_the_fixtures_come_with_alsek(tmp_path: Path, redis_url: str, namespace: str) -> None:
    done = run_pytest(
        tmp_path,
        f"""
        from alsek import Broker, task
        from alsek.storage.backends import RedisBackend
        from alsek.storage.result import ResultStore


        def test_a_task_runs_in_the_worker(alsek_redis_url, alsek_worker):
            assert alsek_redis_url == {redis_url!r}  # from ALSEK_TEST_REDIS_URL
            backend = RedisBackend(alsek_redis_url, namespace={namespace!r})
            results = ResultStore(backend)

            @task(Broker(backend), queue="q", result_store=results)
            def add(a, b):
                return a + b

            worker = alsek_worker(add)
            message = add.generate(args=(2, 3))
            worker.join()
            assert results.get(message) == 5
        """,
        url=redis_url,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_alsek_redis_server_starts_a_throwaway_server(tmp_path: Path) -> None:
    done = run_pytest(
        tmp_path,
        """
        def test_the_server_answers(alsek_redis_server, alsek_redis_url):
            assert alsek_redis_url == alsek_redis_server.url
            assert alsek_redis_server.client().ping()
        """,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_suite_that_does_not_use_the_fixtures_does_not_load_alsek(tmp_path: Path) -> None:
    done = run_pytest(
        tmp_path,
        """
        import sys


        def test_nothing_of_alsek_was_imported():
            loaded = {name for name in sys.modules if name.startswith("alsek.")}
            assert loaded <= {
                "alsek._version",
                "alsek.utils",
                "alsek.utils.exports",
                "alsek.testing",
                "alsek.testing.plugin",
            }, sorted(loaded)
        """,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("fixture", ["alsek_worker", "alsek_redis_url"])
def test_the_plugin_can_be_turned_off(tmp_path: Path, fixture: str) -> None:
    done = run_pytest(
        tmp_path,
        f"""
        def test_uses_it({fixture}):
            pass
        """,
        "-p",
        "no:alsek",
    )
    assert done.returncode == 1
    assert f"fixture '{fixture}' not found" in done.stdout
