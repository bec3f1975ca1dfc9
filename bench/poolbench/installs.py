"""The peers' installations, made on the first run and kept: never in alsek's environment.

Dramatiq, taskiq, Celery (and matplotlib, for the chart) go into ``bench/.venv-peers`` from
PyPI; BullMQ goes into ``bench/peers/bullmq/node_modules`` with ``npm ci`` from the committed
``package-lock.json``. Each is redone when its list (or lock file) changes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

from poolbench.setups import ALSEK, BULLMQ_DIR, NODE, PEERS, PEERS_VENV, peers_python

PEER_REQUIREMENTS = ("dramatiq[redis]", "taskiq", "taskiq-redis", "celery[redis]", "matplotlib")
PEER_DISTRIBUTIONS = (
    "dramatiq",
    "taskiq",
    "taskiq-redis",
    "celery",
    "kombu",
    "redis",
    "matplotlib",
)
#: Where ``npm ci`` is recorded as done, with the hash of the lock file it installed.
NODE_STAMP = BULLMQ_DIR / "node_modules" / ".bench-installed"


def ensure_peers_venv() -> str | None:
    """Create and fill ``PEERS_VENV`` unless it is ready; returns why it cannot be, or None."""
    stamp = PEERS_VENV / ".installed"
    wanted = "\n".join(PEER_REQUIREMENTS)
    if peers_python().exists() and stamp.exists() and stamp.read_text() == wanted:
        return None
    print(f"... installing {', '.join(PEER_REQUIREMENTS)} into {PEERS_VENV}", file=sys.stderr)
    try:
        if not peers_python().exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run(
            [str(peers_python()), "-m", "pip", "install", "--quiet", *PEER_REQUIREMENTS],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        return f"could not set up {PEERS_VENV.name}: {error}"
    stamp.write_text(wanted)
    return None


def _lock_hash() -> str:
    return hashlib.sha256((BULLMQ_DIR / "package-lock.json").read_bytes()).hexdigest()


def ensure_node_modules() -> str | None:
    """Run ``npm ci`` in ``BULLMQ_DIR`` unless done for this lock file; returns why not, or None."""
    if not (shutil.which("node") and shutil.which("npm")):
        return "node and npm are needed for BullMQ (Node 20 or newer)"
    if NODE_STAMP.exists() and NODE_STAMP.read_text() == _lock_hash():
        return None
    print(f"... installing BullMQ into {BULLMQ_DIR / 'node_modules'}", file=sys.stderr)
    try:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BULLMQ_DIR, check=True
        )
    except (OSError, subprocess.CalledProcessError) as error:
        return f"could not install BullMQ: {error}"
    NODE_STAMP.write_text(_lock_hash())
    return None


#: How each requirement is met (alsek's environment is the one running this).
ENSURE = {ALSEK: lambda: None, PEERS: ensure_peers_venv, NODE: ensure_node_modules}


def ensure(requirements: set[str]) -> dict[str, str]:
    """Install what ``requirements`` name; returns, for each that failed, why."""
    problems = {name: ENSURE[name]() for name in sorted(requirements)}
    return {name: problem for name, problem in problems.items() if problem}


def peer_versions() -> dict[str, str]:
    """Installed versions of the peers' distributions and of BullMQ and ioredis."""
    versions: dict[str, str] = {}
    script = (
        "import json, importlib.metadata as m\n"
        f"print(json.dumps({{d: m.version(d) for d in {list(PEER_DISTRIBUTIONS)!r}}}))"
    )
    try:
        result = subprocess.run(
            [str(peers_python()), "-c", script], capture_output=True, text=True, check=True
        )
        versions.update(json.loads(result.stdout))
    except (OSError, subprocess.CalledProcessError):
        pass
    for package in ("bullmq", "ioredis"):
        manifest = BULLMQ_DIR / "node_modules" / package / "package.json"
        if manifest.exists():
            versions[package] = json.loads(manifest.read_text())["version"]
    node = shutil.which("node")
    if node:
        versions["node"] = subprocess.run(
            [node, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    return versions
