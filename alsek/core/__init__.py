"""Core of alsek, and the source of ``Process``, ``Queue``, ``Event`` and ``Value`` for the pools.

``ALSEK_MULTIPROCESSING_BACKEND`` chooses that source: ``"standard"`` (the default) takes them
from :mod:`multiprocessing`, ``"torch"`` from ``torch.multiprocessing`` (so tensors can cross
process boundaries). The value is checked when this package is imported, and an unknown one
raises ``ImportError``; the backend itself is imported only when one of the three names is first
used, so importing alsek never pays for torch.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

_BACKEND_ENV_VAR = "ALSEK_MULTIPROCESSING_BACKEND"
_BACKEND_MODULES = {"standard": "multiprocessing", "torch": "torch.multiprocessing"}
_EXPORTED = ("Process", "Queue", "Event", "Value")

_backend = os.environ.get(_BACKEND_ENV_VAR) or "standard"
if _backend not in _BACKEND_MODULES:
    raise ImportError(
        f"{_BACKEND_ENV_VAR}={_backend!r} is not supported; "
        f"use one of {', '.join(repr(name) for name in _BACKEND_MODULES)}"
    )
_multiprocessing_module = _BACKEND_MODULES[_backend]


def __getattr__(name: str) -> Any:
    """Import ``Process``/``Queue``/``Event``/``Value`` from the chosen backend on first use."""
    if name not in _EXPORTED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_multiprocessing_module), name)
    globals()[name] = value
    return value
