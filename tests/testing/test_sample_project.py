"""``examples/sample_project``: its own test suite, run by pytest in a subprocess as its
developers would run it, passes against a throwaway server and against fakeredis; and a test
that forgets a failing task fails with the task's exception."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_project"
#: How long one run of the sample's suite may take (a Python process, a server, a pool).
RUN_SECONDS = 180


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the sample project (its runs leave nothing in the repository)."""
    copy = tmp_path / "sample_project"
    shutil.copytree(SAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def run_suite(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_TEST_REDIS_URL")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=project,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )


@pytest.mark.slow
def test_the_sample_suite_passes_on_a_throwaway_server(project: Path) -> None:
    done = run_suite(project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout, done.stdout


@pytest.mark.slow
def test_the_sample_suite_passes_on_fakeredis(project: Path) -> None:
    done = run_suite(project, SHOP_TEST_REDIS="fakeredis")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed, 1 skipped" in done.stdout, done.stdout
    assert "child processes, which cannot see fakeredis" in done.stdout


@pytest.mark.slow
def test_a_failing_task_fails_the_test_that_joins_it(project: Path) -> None:
    (project / "tests" / "test_forgetful.py").write_text(
        textwrap.dedent(
            """
            from shop.tasks import charge


            def test_forgets_the_card_limit(alsek_worker):
                worker = alsek_worker(charge)
                charge.generate(args=("o-9", 75_000))
                worker.join()
            """
        )
    )
    done = run_suite(project, SHOP_TEST_REDIS="fakeredis")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 4 passed, 1 skipped" in done.stdout, done.stdout
    # The report shows the task's own exception, raised where the task raised it.
    report = done.stdout
    assert "CardDeclined: order o-9: 75000 cents is over the card limit" in report, report
    assert 'raise CardDeclined(f"order {order_id}' in report, report
    assert "failed for good in alsek's in-process worker" in report, report
