"""core.backoff: the algorithms, clipping, settings round trips and bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from alsek.core.backoff import (
    Backoff,
    ConstantBackoff,
    ExponentialBackoff,
    LinearBackoff,
    settings2backoff,
)


def test_default_exponential_backoff_worked_values() -> None:
    backoff = ExponentialBackoff()
    assert [backoff.get(i) for i in range(6)] == [0, 60_000, 160_000, 640_000, 2_560_000, 3_600_000]


def test_exponential_formula_is_factor_times_base_to_the_power() -> None:
    assert ExponentialBackoff(base=2, factor=100).formula(3) == 800


def test_consumer_default_linear_backoff_worked_values() -> None:
    backoff = LinearBackoff(1000, floor=1000, ceiling=30_000, zero_override=False)
    assert backoff.get(0) == 1000
    assert backoff.get(5) == 5000
    assert backoff.get(30) == 30_000
    assert backoff.get(100) == 30_000


def test_linear_formula_is_factor_times_incidents() -> None:
    assert LinearBackoff(factor=250).formula(4) == 1000


def test_constant_backoff_ignores_incidents() -> None:
    backoff = ConstantBackoff(constant=5000, floor=0, zero_override=False)
    assert backoff.get(0) == backoff.get(7) == 5000


def test_no_backoff_configuration_is_always_zero() -> None:
    backoff = ConstantBackoff(constant=0, floor=0, ceiling=0, zero_override=True)
    assert [backoff.get(i) for i in range(4)] == [0, 0, 0, 0]


def test_zero_override_returns_zero_despite_floor() -> None:
    assert ConstantBackoff(constant=5000).get(0) == 0


def test_floor_raises_small_values() -> None:
    assert LinearBackoff(factor=10, floor=500, ceiling=None).get(1) == 500


def test_ceiling_caps_large_values() -> None:
    assert LinearBackoff(factor=10_000, floor=None, ceiling=15_000).get(3) == 15_000


def test_none_bounds_are_ignored() -> None:
    backoff = LinearBackoff(factor=10, floor=None, ceiling=None)
    assert backoff.get(1) == 10
    assert backoff.get(10**6) == 10**7


def test_floor_above_ceiling_raises_naming_both() -> None:
    with pytest.raises(ValueError, match=r"floor \(10\) must not exceed ceiling \(5\)"):
        ConstantBackoff(floor=10, ceiling=5)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"floor": -1}, "floor"),
        ({"ceiling": "x"}, "ceiling"),
        ({"constant": -5}, "constant"),
        ({"constant": True}, "constant"),
        ({"floor": float("nan")}, "floor"),
    ],
)
def test_invalid_constant_backoff_numbers_raise_naming_the_field(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=f"Backoff {field} must be a number >= 0"):
        ConstantBackoff(**kwargs)


def test_invalid_linear_factor_raises() -> None:
    with pytest.raises(ValueError, match="Backoff factor must be a number >= 0, got -1"):
        LinearBackoff(factor=-1)


@pytest.mark.parametrize("field", ["base", "factor"])
def test_invalid_exponential_parameters_raise(field: str) -> None:
    with pytest.raises(ValueError, match=f"Backoff {field} must be"):
        ExponentialBackoff(**{field: None})


def test_zero_override_must_be_bool() -> None:
    with pytest.raises(ValueError, match="zero_override must be a bool, got 1"):
        ConstantBackoff(zero_override=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("incidents", [-1, 1.5, True, "2"])
def test_get_rejects_bad_incidents(incidents: Any) -> None:
    with pytest.raises(ValueError, match="incidents must be an int >= 0"):
        ExponentialBackoff().get(incidents)


@pytest.mark.parametrize(
    ("backoff", "parameters"),
    [
        (
            ConstantBackoff(),
            {"constant": 60_000, "floor": 60_000, "ceiling": 3_600_000, "zero_override": True},
        ),
        (
            LinearBackoff(),
            {"factor": 30_000, "floor": 60_000, "ceiling": 3_600_000, "zero_override": True},
        ),
        (
            ExponentialBackoff(),
            {
                "base": 4,
                "factor": 10_000,
                "floor": 60_000,
                "ceiling": 3_600_000,
                "zero_override": True,
            },
        ),
    ],
)
def test_parameters_list_own_values_then_bounds(
    backoff: Backoff, parameters: dict[str, Any]
) -> None:
    assert backoff.parameters == parameters
    assert list(backoff.parameters) == list(parameters)


def test_settings_name_the_algorithm_and_its_parameters() -> None:
    backoff = LinearBackoff(factor=5, floor=1, ceiling=50, zero_override=False)
    assert backoff.settings == {
        "algorithm": "LinearBackoff",
        "parameters": {"factor": 5, "floor": 1, "ceiling": 50, "zero_override": False},
    }


@pytest.mark.parametrize(
    "backoff",
    [
        ConstantBackoff(constant=7, floor=None),
        LinearBackoff(factor=3, ceiling=None, zero_override=False),
        ExponentialBackoff(base=3, factor=2, floor=0, ceiling=99),
    ],
)
def test_settings_rebuild_an_equal_backoff_even_through_json(backoff: Backoff) -> None:
    rebuilt = settings2backoff(json.loads(json.dumps(backoff.settings)))
    assert type(rebuilt) is type(backoff)
    assert rebuilt == backoff
    assert [rebuilt.get(i) for i in range(5)] == [backoff.get(i) for i in range(5)]


def test_equality_is_by_settings() -> None:
    assert LinearBackoff(factor=5) == LinearBackoff(factor=5)
    assert LinearBackoff(factor=5) != LinearBackoff(factor=6)
    assert ConstantBackoff(constant=5) != LinearBackoff(factor=5)
    assert LinearBackoff() != "LinearBackoff"


def test_equal_backoffs_hash_alike() -> None:
    assert hash(ExponentialBackoff()) == hash(ExponentialBackoff())
    assert len({ConstantBackoff(), ConstantBackoff(), LinearBackoff()}) == 2


def test_repr_shows_parameters() -> None:
    assert repr(LinearBackoff(factor=5, floor=1, ceiling=10)) == (
        "LinearBackoff(factor=5, floor=1, ceiling=10, zero_override=True)"
    )


def test_base_class_is_abstract() -> None:
    with pytest.raises(TypeError):
        Backoff()  # type: ignore[abstract]


def test_unknown_algorithm_raises_naming_it() -> None:
    with pytest.raises(ValueError, match="Unknown backoff algorithm 'FibonacciBackoff'"):
        settings2backoff({"algorithm": "FibonacciBackoff", "parameters": {}})


@pytest.mark.parametrize("settings", [None, "LinearBackoff", {"algorithm": "LinearBackoff"}])
def test_malformed_settings_raise_value_error(settings: Any) -> None:
    with pytest.raises(ValueError, match="Backoff settings must look like"):
        settings2backoff(settings)


def test_settings_without_algorithm_raise_value_error() -> None:
    with pytest.raises(ValueError, match="Unknown backoff algorithm None"):
        settings2backoff({"parameters": {}})  # type: ignore[typeddict-item]


def test_unexpected_parameter_raises_value_error_naming_the_algorithm() -> None:
    with pytest.raises(ValueError, match="Invalid parameters for LinearBackoff"):
        settings2backoff({"algorithm": "LinearBackoff", "parameters": {"base": 2}})


def test_invalid_parameter_value_in_settings_raises() -> None:
    with pytest.raises(ValueError, match="Backoff factor must be a number >= 0"):
        settings2backoff({"algorithm": "LinearBackoff", "parameters": {"factor": -3}})
