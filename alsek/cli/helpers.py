"""Helpers for the command line that need no click."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package2path(package: str) -> Path:
    """Locate ``package`` on disk without importing it (parents of a dotted name are imported).

    Returns:
        The package's directory when it is a package, or the module's file otherwise.

    Raises:
        ModuleNotFoundError: ``Package '<package>' not found.`` when it cannot be found, or has no
            file on disk (a built-in or namespace package).
    """
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError as error:  # a missing parent of a dotted name
        raise ModuleNotFoundError(f"Package '{package}' not found.") from error
    if spec is None or spec.origin is None or not spec.has_location:
        raise ModuleNotFoundError(f"Package '{package}' not found.")
    origin = Path(spec.origin)
    is_package = spec.submodule_search_locations is not None  # its origin is the __init__ file
    return origin.parent if is_package else origin
