"""The wheel a user installs works on its own: built from this tree, installed in a clean venv.

It must import, run the ``alsek`` command, carry its Lua scripts and ``py.typed``, and talk to
Redis with the core dependencies alone (no hiredis: that is the ``alsek[hiredis]`` extra).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "alsek"

# Building and installing a wheel takes minutes on a loaded machine: past the default 120 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _run(*args: str | Path, cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The Python of a fresh venv holding the wheel built from this tree (and its deps)."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, REPO, cwd=root)
    (wheel,) = dist.glob("alsek-*.whl")
    _run(sys.executable, "-m", "venv", root / "venv", cwd=root)
    python = root / "venv" / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", wheel, cwd=root)
    yield python


def _in_venv(python: Path, code: str, cwd: Path) -> str:
    return _run(python, "-c", textwrap.dedent(code), cwd=cwd)


def test_the_installed_package_is_the_wheel(installed: Path, tmp_path: Path) -> None:
    from alsek import __version__

    shown = _in_venv(
        installed, "import alsek; print(alsek.__version__); print(alsek.__file__)", tmp_path
    )
    version, location = shown.split()
    assert version == __version__
    assert Path(location).is_relative_to(installed.parents[1]), location


def test_the_cli_runs(installed: Path, tmp_path: Path) -> None:
    output = _run(installed.with_name("alsek"), "--help", cwd=tmp_path)
    for command in ("thread-pool", "process-pool", "async-pool"):
        assert command in output


def test_the_lua_scripts_and_py_typed_are_installed(installed: Path, tmp_path: Path) -> None:
    listing = _in_venv(
        installed,
        """
        import json
        from importlib.resources import files
        root = files("alsek")
        found = []
        stack = [root]
        while stack:
            node = stack.pop()
            for child in node.iterdir():
                if child.is_dir():
                    stack.append(child)
                elif child.name.endswith(".lua") or child.name == "py.typed":
                    found.append(str(child.relative_to(root)))
        print(json.dumps(sorted(found)))
        """,
        tmp_path,
    )
    expected = sorted(
        str(p.relative_to(PACKAGE)) for p in [*PACKAGE.rglob("*.lua"), PACKAGE / "py.typed"]
    )
    assert len(expected) > 5
    assert json.loads(listing) == expected


def test_the_core_install_works_without_hiredis(
    installed: Path, tmp_path: Path, redis_url: str, namespace: str
) -> None:
    """Submit, claim and ack with the pure-Python parser of redis-py."""
    output = _in_venv(
        installed,
        f"""
        import importlib.util
        assert importlib.util.find_spec("hiredis") is None, "hiredis is a core dependency"
        from alsek import Broker
        from alsek.core.broker import ClaimSource
        from alsek.core.message import Message
        from alsek.storage.backends.redis import RedisBackend
        broker = Broker(RedisBackend({redis_url!r}, namespace={namespace!r}))
        broker.submit(Message("wheel_check", queue="wheel", args=(1, 2)))
        claim = broker.claim([ClaimSource("wheel")], 10, "lock:wheel-test:process:1:lease:t")
        assert [m.args for m in claim.messages] == [(1, 2)], claim
        assert broker.ack(claim.messages[0])
        print("ok")
        """,
        tmp_path,
    )
    assert output.strip() == "ok"


def test_the_dashboard_templates_and_static_files_are_installed(
    installed: Path, tmp_path: Path
) -> None:
    """``alsek.web`` renders templates and serves its script and styles from the package."""
    listing = _in_venv(
        installed,
        """
        import json
        from importlib.resources import files
        web = files("alsek") / "web"
        names = [f"{d}/{c.name}" for d in ("templates", "static") for c in (web / d).iterdir()]
        print(json.dumps(sorted(names)))
        """,
        tmp_path,
    )
    web = PACKAGE / "web"
    expected = sorted(f"{d}/{p.name}" for d in ("templates", "static") for p in (web / d).iterdir())
    assert "static/dashboard.js" in expected and "templates/base.html" in expected
    assert json.loads(listing) == expected
