"""Every code block of the documentation runs here, so the docs cannot drift from the code.

The ```python blocks of ``docs/**/*.md`` and ``README.md`` run in page order, the blocks of one
page sharing one namespace, against the suite's Redis server. An HTML comment on the line before
a fence says what else to do with a block:

* ``<!-- not-run: REASON -->``: the block is shown, not run (a fragment, code of another library
  for comparison, a settings file of a framework...). The reason is required.
* ``<!-- file: PATH -->``: the block is written to ``PATH`` in the page's working directory (the
  directory is importable, and is the working directory of the page's commands), not run.
* ``<!-- background -->`` before a ```bash block: each line is a command started in the
  background (``alsek async-pool myapp``), in the page's directory; every such command is
  stopped with SIGTERM when the page is done, and must exit with status 0.
* ``<!-- run -->`` before a ```bash block: each line is a command run to completion
  (``pytest -q``), in the page's directory, with the same environment; it must exit with
  status 0.

Any other fence must name its language (``bash``, ``text``, ``yaml``, ``dockerfile``...);
Python under another name (``py``, ``pycon``) or a fence without a language fails the test,
so nothing is skipped silently. The test prints what it counted.

Where a runnable block (or a written file) names ``"redis://localhost:6379/0"``, it must be
the first argument of ``RedisBackend(...)`` or ``AsyncRedisBackend(...)``: the test points it at
the suite's server and adds ``namespace=`` with the test's own namespace.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = [*sorted(DOCS.rglob("*.md")), REPO / "README.md"]
BIN = Path(sys.executable).parent

DOC_URL = '"redis://localhost:6379/0"'
BACKEND_CALL = re.compile(r'((?:Async)?RedisBackend\(\s*)"redis://localhost:6379/0"')
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\s]*)")
MARKER = re.compile(
    r"^\s*<!--\s*(?P<kind>not-run|file|background|run)\s*(?::\s*(?P<arg>.*?))?\s*-->"
)
PYTHON_ALIASES = {"py", "py3", "python3", "pycon", "ipython", "pyi"}
#: How long a background command gets to stop after SIGTERM.
STOP_SECONDS = 20.0
#: How long a ``<!-- run -->`` command may take.
COMMAND_SECONDS = 180.0


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    lang: str
    code: str
    marker: str | None = None
    arg: str | None = None

    @property
    def where(self) -> str:
        page = self.page.relative_to(REPO) if self.page.is_relative_to(REPO) else self.page
        return f"{page}:{self.line}"


def _marker_before(lines: list[str], index: int) -> tuple[str | None, str | None]:
    """The marker comment on the nearest non-blank line above line ``index``, if any."""
    for previous in reversed(lines[:index]):
        if previous.strip():
            found = MARKER.match(previous)
            return (found["kind"], found["arg"]) if found else (None, None)
    return None, None


def extract_blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, in order, dedented to their fence."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        kind, arg = _marker_before(lines, i)
        lang = opening["info"].split("{")[0].lower()
        blocks.append(Block(page, i + 1, lang, "\n".join(body) + "\n", kind, arg))
        i = j + 1
    return blocks


def check_block(block: Block) -> str:
    """What the test does with the block: "run", "file", "not-run", "background",
    "commands" or "shown".

    Fails on a block that could hide Python from the test.
    """
    if not block.lang:
        pytest.fail(f"{block.where}: a fence without a language (say `text`, `bash`...)")
    if block.lang in PYTHON_ALIASES:
        pytest.fail(f"{block.where}: Python fenced as {block.lang!r}: use ```python")
    if block.marker == "not-run":
        if not (block.arg or "").strip():
            pytest.fail(f"{block.where}: <!-- not-run: REASON --> needs a reason")
        return "not-run"
    if block.marker == "file":
        if not (block.arg or "").strip():
            pytest.fail(f"{block.where}: <!-- file: PATH --> needs a path")
        return "file"
    if block.marker == "background":
        if block.lang != "bash":
            pytest.fail(f"{block.where}: <!-- background --> is for ```bash blocks")
        return "background"
    if block.marker == "run":
        if block.lang != "bash":
            pytest.fail(f"{block.where}: <!-- run --> is for ```bash blocks")
        return "commands"
    return "run" if block.lang == "python" else "shown"


def point_at_test_server(block: Block, url: str, namespace: str) -> str:
    """The block's code with the documented Redis URL replaced by the test server's."""
    code = BACKEND_CALL.sub(rf'\1"{url}", namespace="{namespace}"', block.code)
    if DOC_URL in code:
        pytest.fail(
            f"{block.where}: {DOC_URL} must be the first argument of RedisBackend(...) or "
            "AsyncRedisBackend(...), so the test can point it at its own server"
        )
    return code


class Page:
    """Runs the blocks of one page in order, in one namespace and one working directory."""

    def __init__(self, page: Path, workdir: Path, url: str, namespace: str) -> None:
        self.page = page
        self.workdir = workdir
        self.url = url
        self.namespace = namespace
        # A real module, so that dill pickles the page's functions by reference to it (a
        # thread pool's process groups get their tasks that way, as from a user's module).
        self.module = types.ModuleType(f"doc_{page.stem.replace('-', '_')}")
        sys.modules[self.module.__name__] = self.module
        self.background: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self.counts: dict[str, int] = {}
        self.reasons: list[str] = []

    def run(self) -> None:
        for block in extract_blocks(self.page):
            action = check_block(block)
            self.counts[action] = self.counts.get(action, 0) + 1
            if action == "not-run":
                self.reasons.append(f"{block.where}: {block.arg}")
            elif action == "file":
                self._write(block)
            elif action == "background":
                self._start(block)
            elif action == "commands":
                self._run_commands(block)
            elif action == "run":
                self._exec(block)

    def _write(self, block: Block) -> None:
        target = self.workdir / (block.arg or "").strip()
        code = point_at_test_server(block, self.url, self.namespace)
        if target.suffix == ".py":
            compile(code, block.where, "exec")  # at least valid, even if nothing imports it
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code)

    def _exec(self, block: Block) -> None:
        code = compile(point_at_test_server(block, self.url, self.namespace), block.where, "exec")
        try:
            exec(code, self.module.__dict__)
        except BaseException as error:
            logs = "".join(
                f"\n--- `{command}` so far:\n{log.read_text(errors='replace')[-2000:]}"
                for command, _, log in self.background
            )
            raise AssertionError(f"{block.where}: the block raised {error!r}{logs}") from error

    def _environment(self) -> dict[str, str]:
        """The environment of the page's commands: our tools first, the page's files importable."""
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        env["PYTHONPATH"] = os.pathsep.join([str(self.workdir), str(REPO)])
        return env

    @staticmethod
    def _commands(block: Block) -> list[str]:
        lines = (line.strip() for line in block.code.splitlines())
        return [line for line in lines if line and not line.startswith("#")]

    def _run_commands(self, block: Block) -> None:
        for command in self._commands(block):
            done = subprocess.run(
                shlex.split(command),
                cwd=self.workdir,
                env=self._environment(),
                capture_output=True,
                text=True,
                timeout=COMMAND_SECONDS,
            )
            if done.returncode != 0:
                output = (done.stdout + done.stderr)[-4000:]
                raise AssertionError(
                    f"{block.where}: `{command}` ended with {done.returncode}:\n{output}"
                )

    def _start(self, block: Block) -> None:
        env = self._environment()
        for command in self._commands(block):
            log = self.workdir / f"background-{len(self.background)}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    shlex.split(command),
                    cwd=self.workdir,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.background.append((command, process, log))

    def stop_background(self) -> list[str]:
        """SIGTERM every background command; the problems (exit status, hang), if any."""
        problems = []
        for command, process, log in self.background:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                status = process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                status = None
            if status != 0:
                output = log.read_text(errors="replace")[-3000:]
                problems.append(f"`{command}` ended with {status}:\n{output}")
        return problems


@contextlib.contextmanager
def page_environment(workdir: Path) -> Iterator[None]:
    """The page's directory importable and current; modules it defined forgotten afterwards;
    stop signal handlers (pools install them) put back."""
    saved_cwd, saved_path = os.getcwd(), list(sys.path)
    saved_handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    before = set(sys.modules)
    os.chdir(workdir)
    sys.path.insert(0, str(workdir))
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        for name in set(sys.modules) - before:
            module = sys.modules[name]
            origins = [getattr(module, "__file__", None) or "", *getattr(module, "__path__", [])]
            if any(str(origin).startswith(str(workdir)) for origin in origins):
                del sys.modules[name]
        for signum, handler in saved_handlers.items():
            signal.signal(signum, handler)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_page_blocks_run(
    page: Path, redis_url: str, namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    runner = Page(page, tmp_path, redis_url, namespace)
    with page_environment(tmp_path):
        try:
            runner.run()
        finally:
            problems = runner.stop_background()
            sys.modules.pop(runner.module.__name__, None)
    assert not problems, "\n".join(problems)
    with capsys.disabled():
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(runner.counts.items()))
        took = time.monotonic() - started
        print(f"\n{page.relative_to(REPO)}: {counts or 'no blocks'} ({took:.1f} s)")
        for reason in runner.reasons:
            print(f"  not run: {reason}")


def test_every_python_block_is_accounted_for() -> None:
    """Across the docs, Python blocks are run, written as files, or not run with a reason."""
    counts: dict[str, int] = {}
    for page in PAGES:
        for block in extract_blocks(page):
            action = check_block(block)
            counts[action] = counts.get(action, 0) + 1
    assert counts.get("run", 0) > counts.get("not-run", 0), counts


def test_marker_rules_catch_hidden_python(tmp_path: Path) -> None:
    """The checks that keep Python from being skipped silently do fail."""
    page = tmp_path / "page.md"
    for text in (
        "```\nprint(1)\n```\n",
        "```py\nprint(1)\n```\n",
        "<!-- not-run: -->\n```python\nprint(1)\n```\n",
        "<!-- run -->\n```python\nprint(1)\n```\n",
    ):
        page.write_text(text)
        (block,) = extract_blocks(page)
        with pytest.raises(pytest.fail.Exception):
            check_block(block)
    page.write_text("<!-- not-run: a fragment -->\n\n```python\nx = (\n```\n")
    (block,) = extract_blocks(page)
    assert check_block(block) == "not-run"


CLI_PAGE = DOCS / "reference" / "cli.md"


OPERATING_PAGE = DOCS / "operating.md"


def _commands(group: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
    """Every command under ``group``, sub-commands of sub-groups included, by full name."""
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix} {name}")


def test_cli_reference_names_every_option() -> None:
    """docs/reference/cli.md (the pool commands) and docs/operating.md (the operator's
    commands) name every command and option of ``alsek``."""
    from alsek.cli.cli import main

    text = CLI_PAGE.read_text(encoding="utf-8") + OPERATING_PAGE.read_text(encoding="utf-8")
    missing = []
    for name, command in _commands(main, "alsek"):
        if name not in text:
            missing.append(name)
        for parameter in command.params:
            if isinstance(parameter, click.Option):
                missing += [opt for opt in parameter.opts if f"`{opt}" not in text]
    assert not missing, f"the CLI pages do not mention: {missing}"


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """``mkdocs build --strict``: every page in the nav, every link and API reference resolved
    (a class that moves away from its documented import path fails here)."""
    done = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--quiet", "--site-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
