"""Membership (contains), snapping (nearest), normal parameters, and hashing/equality."""

from __future__ import annotations

import math
import random

import pytest

from tuner.space import Parameter, ParameterType, SearchSpace, SpaceError


def double(low: str = "0.1", high: str = "0.5", step: str | None = None, **kw: str) -> Parameter:
    return Parameter.from_wire("x", "double", min=low, max=high, step=step, **kw)


def integer(low: str = "1", high: str = "10", step: str | None = None, **kw: str) -> Parameter:
    return Parameter.from_wire("n", "int", min=low, max=high, step=step, **kw)


DISCRETE = Parameter.from_wire("d", "discrete", values=["1", "2.5", "4"])
CATEGORICAL = Parameter.from_wire("c", "categorical", values=["sgd", "adam"])


def test_int_contains_bounds_and_step() -> None:
    parameter = integer("1", "10", "3")
    assert [v for v in range(-2, 14) if parameter.contains(v)] == [1, 4, 7, 10]
    assert parameter.contains(4.0)
    for outside in (4.5, True, "4", math.nan, None):
        assert not parameter.contains(outside)  # type: ignore[arg-type]


def test_double_without_step_contains_its_closed_range() -> None:
    parameter = double()
    assert parameter.contains(0.1) and parameter.contains(0.5) and parameter.contains(0.3333)
    for outside in (0.0999999, 0.5000001, math.inf, math.nan, "0.3"):
        assert not parameter.contains(outside)


def test_double_with_step_contains_grid_points_within_float_noise() -> None:
    parameter = double(step="0.1")
    assert parameter.contains(0.1 + 0.2)  # 0.30000000000000004
    assert parameter.contains(0.5)
    for outside in (0.25, 0.6, 0.0, 0.3 + 1e-6):
        assert not parameter.contains(outside)


def test_every_grid_value_is_contained() -> None:
    for parameter in (double("-1.5", "2.3", "0.07"), integer("-5", "40", "7"), DISCRETE):
        assert all(parameter.contains(v) for v in parameter.grid_values())


def test_discrete_contains_compares_numerically() -> None:
    assert DISCRETE.contains(1.0) and DISCRETE.contains(4) and DISCRETE.contains(2.5)
    assert not DISCRETE.contains(2) and not DISCRETE.contains(True)
    assert not DISCRETE.contains("1")


def test_categorical_contains_exact_strings() -> None:
    assert CATEGORICAL.contains("sgd")
    assert not CATEGORICAL.contains("SGD") and not CATEGORICAL.contains(1)


def test_broken_definition_contains_nothing_and_does_not_raise() -> None:
    assert not integer("5", "1").contains(3)
    assert not Parameter.from_wire("x", "double", min="abc", max="1").contains(0.5)


def test_space_contains_needs_exactly_its_names() -> None:
    space = SearchSpace((integer(), CATEGORICAL))
    assert space.contains({"n": 3, "c": "adam"})
    assert not space.contains({"n": 3})
    assert not space.contains({"n": 3, "c": "adam", "extra": 1})
    assert not space.contains({"n": 11, "c": "adam"})


def test_nearest_clips_and_snaps_to_the_grid() -> None:
    assert double(step="0.1").nearest(0.26) == 0.3
    assert double(step="0.1").nearest(9.0) == 0.5
    assert double().nearest(-3) == 0.1 and double().nearest(0.123) == 0.123
    assert integer("0", "10", "3").nearest(8.6) == 9
    assert integer("0", "10", "3").nearest(100) == 9
    assert DISCRETE.nearest(2) == 2.5 and DISCRETE.nearest(-7) == 1
    assert CATEGORICAL.nearest("adam") == "adam"
    with pytest.raises(SpaceError, match="'rmsprop' is not in feasibleSpace.list"):
        CATEGORICAL.nearest("rmsprop")
    with pytest.raises(SpaceError, match="nan is not a finite number"):
        integer().nearest(math.nan)


def test_nearest_is_always_contained() -> None:
    rng = random.Random(3)
    parameters = [double("-2", "3.5", "0.3"), double("1e-4", "1e-1"), integer("-7", "30", "4")]
    for parameter in parameters + [DISCRETE]:
        for _ in range(500):
            assert parameter.contains(parameter.nearest(rng.uniform(-50, 50))), parameter


def test_normal_params_follow_katib_three_sigma_rule() -> None:
    assert double("2", "8", distribution="normal").normal_params() == (5.0, 1.0)
    mu, sigma = double("1e-4", "1e-1", distribution="logNormal").normal_params()
    assert math.isclose(math.exp(mu), math.sqrt(1e-4 * 1e-1))
    assert math.isclose(sigma, (math.log(1e-1) - math.log(1e-4)) / 6)
    with pytest.raises(SpaceError, match="needs distribution normal or logNormal"):
        double().normal_params()


def test_parameters_are_hashable_values() -> None:
    from_wire = integer("1", "10", "3")
    built = Parameter("n", ParameterType.INT, min=1, max=10, step=3)
    assert from_wire == built and hash(from_wire) == hash(built)
    cache = {SearchSpace((built, CATEGORICAL)): "cached"}
    assert cache[SearchSpace((from_wire, CATEGORICAL))] == "cached"
    # A list is accepted and stored as a tuple, so the space stays hashable.
    from_list = SearchSpace([built])  # type: ignore[arg-type]
    assert from_list.parameters == (built,) and hash(from_list) == hash(SearchSpace((built,)))


def test_numbers_are_stored_with_their_real_type() -> None:
    parameter = Parameter("x", "double", min=0, max=1, step=1)  # type: ignore[arg-type]
    assert type(parameter.min) is float and type(parameter.step) is float
    assert parameter.type is ParameterType.DOUBLE
    assert [type(v) for v in DISCRETE.values] == [int, float, int]


def test_space_lookup_by_name() -> None:
    space = SearchSpace((integer(), CATEGORICAL))
    assert space["c"] is CATEGORICAL and space.names == ["n", "c"] and len(space) == 2
    with pytest.raises(SpaceError, match="unknown parameter 'lr'; the space has 'n', 'c'"):
        space["lr"]
