"""Find the tasks defined in a package, for the CLI and the worker pools.

This is the bottom layer, so it imports no task class. A task is recognised by duck type: its
class carries ``_alsek_task_kind = "sync"`` (``Task`` and its subclasses) or ``"async"``
(``AsyncTask`` and its subclasses), which the task layer sets. Instances are what count; the
task classes themselves are not collected.

Every module of a package is imported (importing is how the tasks come into existence), the
package's own ``__init__`` and sub-packages included. Tasks are keyed by ``task.name``, the name
consumers dispatch on, so two different task objects that share a name are an error rather than
one silently shadowing the other. The same object re-exported from several modules is one task.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Literal

from alsek.exceptions import NoTasksFoundError, TaskNameCollisionError
from alsek.utils.logging import magic_logger

log = logging.getLogger(__name__)

TaskKind = Literal["sync", "async"]
_LABELS: dict[str, str] = {"sync": "tasks", "async": "async tasks"}


def _is_task(obj: Any) -> bool:
    """Whether ``obj`` is a sync task instance (its class says ``_alsek_task_kind = "sync"``)."""
    return getattr(type(obj), "_alsek_task_kind", None) == "sync"


def _is_async_task(obj: Any) -> bool:
    """Whether ``obj`` is an async task instance (``_alsek_task_kind = "async"``)."""
    return getattr(type(obj), "_alsek_task_kind", None) == "async"


def _load(module: str | ModuleType) -> ModuleType:
    """Import ``module`` (a dotted name) with the working directory importable."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    if isinstance(module, ModuleType):
        return module
    if isinstance(module, str):
        return importlib.import_module(module)
    raise TypeError(f"Expected a module or a module name, got {type(module).__name__} {module!r}")


def _reraise(name: str) -> None:
    """``walk_packages`` hook: a sub-package that fails to import is an error, not a skip."""
    raise  # pkgutil calls this inside its ``except`` block, so the import error is re-raised


def _modules(root: ModuleType) -> Iterator[ModuleType]:
    """``root`` itself, then (for a package) every module and sub-package below it."""
    yield root
    if not hasattr(root, "__path__"):
        return
    for info in pkgutil.walk_packages(root.__path__, f"{root.__name__}.", onerror=_reraise):
        yield importlib.import_module(info.name)


def _collect_engine(module: str | ModuleType, kind: TaskKind) -> tuple[Any, ...]:
    """Import ``module`` and everything below it; return its tasks of ``kind`` by ``task.name``."""
    label = _LABELS[kind]
    is_wanted = _is_task if kind == "sync" else _is_async_task
    root = _load(module)
    found: dict[str, tuple[Any, str]] = {}
    for candidate in _modules(root):
        for obj in list(vars(candidate).values()):
            if not is_wanted(obj):
                continue
            name = obj.name
            if name in found and found[name][0] is not obj:
                raise TaskNameCollisionError(
                    f"Multiple {label} named '{name}': one in module '{found[name][1]}' "
                    f"and another in module '{candidate.__name__}'"
                )
            found.setdefault(name, (obj, candidate.__name__))
    if not found:
        raise NoTasksFoundError(f"No {label} found in '{root.__name__}'")
    return tuple(task for task, _ in found.values())


def _log_scan(module: str | ModuleType) -> None:
    log.debug("Scanning %r for tasks...", getattr(module, "__name__", module))


def _log_found(output: tuple[Any, ...]) -> None:
    log.debug("Found %s task(s).", len(output))


@magic_logger(before=_log_scan, after=_log_found)
def collect_tasks(module: str | ModuleType) -> tuple[Any, ...]:
    """Import ``module`` (and, for a package, all its modules) and return its sync tasks.

    Raises:
        TypeError: ``module`` is neither a module nor a name.
        ImportError: the package or one of its modules cannot be imported (unchanged).
        TaskNameCollisionError: two different tasks share a ``name``.
        NoTasksFoundError: there are none.
    """
    return _collect_engine(module, "sync")


@magic_logger(before=_log_scan, after=_log_found)
def collect_async_tasks(module: str | ModuleType) -> tuple[Any, ...]:
    """Like :func:`collect_tasks`, for async tasks."""
    return _collect_engine(module, "async")
