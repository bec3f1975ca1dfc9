"""Exceptions as plain data, so that a failure can be stored with its message and rebuilt later."""

from __future__ import annotations

import builtins
import importlib
import traceback as traceback_module
from typing import Any, NamedTuple


class ExceptionDetails(NamedTuple):
    """An exception reduced to its class name, text and formatted traceback."""

    name: str
    text: str | None = None
    traceback: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-friendly)."""
        return dict(self._asdict())

    def as_exception(self, strict: bool = True) -> BaseException:
        """Rebuild the exception object from its name, with ``text`` as its single argument.

        The traceback is not restored. When the class cannot be found or built, ``strict``
        re-raises that error; otherwise a generic ``Exception("{name}: {text}")`` stands in.

        Raises:
            ImportError, AttributeError, TypeError: the class cannot be rebuilt and ``strict``.
        """
        try:
            exception_class = _find_exception_class(self.name)
            return exception_class() if self.text is None else exception_class(self.text)
        except (ImportError, AttributeError, TypeError):
            if strict:
                raise
            return Exception(f"{self.name}: {self.text}")


def _find_exception_class(name: str) -> type[BaseException]:
    """Resolve ``"module.Qual.Name"`` (longest importable module prefix) or a builtin name."""
    parts = name.split(".")
    if len(parts) == 1:
        found: Any = getattr(builtins, name)
    else:
        found = _import_longest_prefix(parts)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise TypeError(f"{name!r} is not an exception class")
    return found


def _import_longest_prefix(parts: list[str]) -> Any:
    """Import the longest dotted prefix of ``parts`` that is a module, then walk the rest."""
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(f"No module found for exception {'.'.join(parts)!r}")


def get_exception_name(exception: BaseException | type[BaseException]) -> str:
    """``"KeyError"`` for builtins, ``"{module}.{qualname}"`` for everything else."""
    exception_class = exception if isinstance(exception, type) else type(exception)
    if exception_class.__module__ == "builtins":
        return exception_class.__qualname__
    return f"{exception_class.__module__}.{exception_class.__qualname__}"


def parse_exception(error: BaseException) -> ExceptionDetails:
    """Capture ``error``'s class name, ``str(error)`` and full formatted traceback."""
    return ExceptionDetails(
        name=get_exception_name(error),
        text=str(error),
        traceback="".join(
            traceback_module.format_exception(type(error), error, error.__traceback__)
        ),
    )
