"""How long to wait before the next attempt, as a function of how many attempts failed.

A backoff is plain data: ``settings`` (algorithm name + parameters) is JSON-friendly, travels
inside every message, and :func:`settings2backoff` rebuilds the same object from it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, TypedDict

from alsek.utils.printing import auto_repr


class BackoffSettingsType(TypedDict):
    """The persisted form of a backoff: ``{"algorithm": <class name>, "parameters": {...}}``."""

    algorithm: str
    parameters: dict[str, Any]


def _check_number(name: str, value: Any, allow_none: bool = False) -> None:
    """Require a finite, non-negative int or float (not a bool)."""
    if value is None and allow_none:
        return
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or value < 0:
        expected = "a number >= 0" + (" or None" if allow_none else "")
        raise ValueError(f"Backoff {name} must be {expected}, got {value!r}")


class Backoff(ABC):
    """Base of the backoff algorithms: clips ``formula(incidents)`` to ``[floor, ceiling]``.

    Args:
        floor: least backoff in ms (``None``: no lower bound).
        ceiling: greatest backoff in ms (``None``: no upper bound).
        zero_override: no backoff at all when there have been no incidents yet.

    Raises:
        ValueError: a bound is negative or not a number, or ``floor > ceiling``.
    """

    def __init__(
        self,
        floor: int | None = 60 * 1000,
        ceiling: int | None = 60 * 60 * 1000,
        zero_override: bool = True,
    ) -> None:
        _check_number("floor", floor, allow_none=True)
        _check_number("ceiling", ceiling, allow_none=True)
        if floor is not None and ceiling is not None and floor > ceiling:
            raise ValueError(f"Backoff floor ({floor}) must not exceed ceiling ({ceiling})")
        if not isinstance(zero_override, bool):
            raise ValueError(f"Backoff zero_override must be a bool, got {zero_override!r}")
        self.floor = floor
        self.ceiling = ceiling
        self.zero_override = zero_override

    @property
    @abstractmethod
    def parameters(self) -> dict[str, Any]:
        """The algorithm's own parameters plus floor, ceiling and zero_override."""

    @property
    def settings(self) -> BackoffSettingsType:
        """Everything needed to rebuild this backoff with :func:`settings2backoff`."""
        return {"algorithm": type(self).__name__, "parameters": self.parameters}

    @abstractmethod
    def formula(self, incidents: int) -> int:
        """The raw backoff in ms after ``incidents`` failures, before clipping."""

    def get(self, incidents: int) -> int:
        """The backoff in ms after ``incidents`` failures, clipped to ``[floor, ceiling]``.

        Raises:
            ValueError: ``incidents`` is not an int >= 0.
        """
        if not isinstance(incidents, int) or isinstance(incidents, bool) or incidents < 0:
            raise ValueError(f"Backoff incidents must be an int >= 0, got {incidents!r}")
        if self.zero_override and incidents == 0:
            return 0
        value = self.formula(incidents)
        if self.floor is not None and value < self.floor:
            return int(self.floor)
        if self.ceiling is not None and value > self.ceiling:
            return int(self.ceiling)
        return value

    def _bounds(self) -> dict[str, Any]:
        return {"floor": self.floor, "ceiling": self.ceiling, "zero_override": self.zero_override}

    def __repr__(self) -> str:
        return auto_repr(self, **self.parameters)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Backoff):
            return NotImplemented
        return self.settings == other.settings

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.parameters.items()))))


class ConstantBackoff(Backoff):
    """The same wait after every failure: ``constant`` ms."""

    def __init__(self, constant: int = 60 * 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_number("constant", constant)
        self.constant = constant

    @property
    def parameters(self) -> dict[str, Any]:
        """``constant`` plus the bounds."""
        return {"constant": self.constant, **self._bounds()}

    def formula(self, incidents: int) -> int:
        """``constant``, whatever the number of incidents."""
        return int(self.constant)


class LinearBackoff(Backoff):
    """A wait that grows by ``factor`` ms per failure."""

    def __init__(self, factor: int = 30 * 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_number("factor", factor)
        self.factor = factor

    @property
    def parameters(self) -> dict[str, Any]:
        """``factor`` plus the bounds."""
        return {"factor": self.factor, **self._bounds()}

    def formula(self, incidents: int) -> int:
        """``factor * incidents``."""
        return int(self.factor * incidents)


class ExponentialBackoff(Backoff):
    """A wait that multiplies by ``base`` per failure, starting from ``factor`` ms."""

    def __init__(self, base: int = 4, factor: int = 10_000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_number("base", base)
        _check_number("factor", factor)
        self.base = base
        self.factor = factor

    @property
    def parameters(self) -> dict[str, Any]:
        """``base`` and ``factor`` plus the bounds."""
        return {"base": self.base, "factor": self.factor, **self._bounds()}

    def formula(self, incidents: int) -> int:
        """``factor * base ** incidents``."""
        return int(self.factor * self.base**incidents)


_ALGORITHMS: dict[str, type[Backoff]] = {
    cls.__name__: cls for cls in (ConstantBackoff, LinearBackoff, ExponentialBackoff)
}


def _get_algorithm(name: str) -> type[Backoff]:
    """The backoff class called ``name``.

    Raises:
        ValueError: no backoff algorithm has that name.
    """
    try:
        return _ALGORITHMS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown backoff algorithm {name!r}; expected one of {', '.join(_ALGORITHMS)}"
        ) from None


def settings2backoff(settings: BackoffSettingsType) -> Backoff:
    """Rebuild a backoff from its ``settings``.

    Raises:
        ValueError: ``settings`` is not of the form ``{"algorithm": str, "parameters": dict}``,
            names an unknown algorithm, or carries invalid parameters.
    """
    if not isinstance(settings, dict) or not isinstance(settings.get("parameters"), dict):
        raise ValueError(
            f'Backoff settings must look like {{"algorithm": str, "parameters": dict}}, '
            f"got {settings!r}"
        )
    algorithm = _get_algorithm(settings.get("algorithm"))
    try:
        return algorithm(**settings["parameters"])
    except TypeError as error:
        raise ValueError(f"Invalid parameters for {algorithm.__name__}: {error}") from None
