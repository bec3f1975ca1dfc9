"""What users' type checkers see of alsek: mypy (this venv's) over ``snippets/*.py``.

Each snippet says, at the end of a line, what mypy must report there: ``# T: <type>`` the type
a ``reveal_type`` on that line reveals, ``# E: <text>`` part of an error. Everything mypy
reports on a snippet must be expected, so a type that turns into ``Any`` fails too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = sorted((Path(__file__).parent / "snippets").glob("*.py"))

_EXPECTATION = re.compile(r"(?:^|\s)# (?P<kind>[TE]): (?P<text>.+?)\s*$")
_REPORT = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): (?P<severity>error|note): (?P<text>.*)$")
_REVEALED = re.compile(r'^Revealed type is "(?P<type>.*)"$')


class Report(NamedTuple):
    """One thing mypy said about a snippet line: a revealed type (``T``) or an error (``E``)."""

    line: int
    kind: str
    text: str


def _expected(snippet: Path) -> list[Report]:
    reports = []
    for number, line in enumerate(snippet.read_text().splitlines(), start=1):
        found = _EXPECTATION.search(line)
        if found:
            reports.append(Report(number, found["kind"], found["text"]))
    return reports


def _run_mypy(snippets: list[Path], cache_dir: Path) -> str:
    """mypy's output, ``--strict`` under the project's configuration (as in ``make lint``)."""
    command = [sys.executable, "-m", "mypy", "--strict", "--config-file", "pyproject.toml"]
    command += ["--cache-dir", str(cache_dir), "--show-error-codes", "--hide-error-context"]
    command += ["--no-error-summary", "--no-pretty", "--show-absolute-path"]
    done = subprocess.run(
        [*command, *map(str, snippets)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    # 0: clean, 1: errors were found (the snippets have some on purpose); more is a crash.
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.stdout


def _reported(output: str, snippet: Path) -> list[Report]:
    """What mypy said about ``snippet`` (errors elsewhere, in the package, are not its own)."""
    reports = []
    for line in output.splitlines():
        found = _REPORT.match(line)
        if not found or Path(found["path"]) != snippet.resolve():
            continue
        revealed = _REVEALED.match(found["text"])
        if revealed:
            reports.append(Report(int(found["line"]), "T", revealed["type"]))
        elif found["severity"] == "error":
            reports.append(Report(int(found["line"]), "E", found["text"]))
    return reports


def _matches(expected: Report, reported: Report) -> bool:
    if (expected.line, expected.kind) != (reported.line, reported.kind):
        return False
    if expected.kind == "T":
        return expected.text == reported.text
    return expected.text in reported.text


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One mypy run over every snippet (the first run builds its cache: about two seconds)."""
    return _run_mypy(SNIPPETS, tmp_path_factory.mktemp("mypy-cache"))


def test_there_are_snippets() -> None:
    assert SNIPPETS and all(_expected(snippet) for snippet in SNIPPETS)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda path: path.stem)
def test_mypy_reports_what_the_snippet_expects(snippet: Path, mypy_output: str) -> None:
    expected = _expected(snippet)
    reported = _reported(mypy_output, snippet)
    missing = [e for e in expected if not any(_matches(e, r) for r in reported)]
    unexpected = [r for r in reported if not any(_matches(e, r) for e in expected)]
    assert (missing, unexpected) == ([], []), mypy_output
