"""The discretised space: Parameter.grid_values/grid_size and SearchSpace.grid/grid_size."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from tuner.space import Parameter, SearchSpace, SpaceError


def double(low: str, high: str, step: str | None = None) -> Parameter:
    return Parameter.from_wire("x", "double", min=low, max=high, step=step)


def integer(low: str, high: str, step: str | None = None, name: str = "n") -> Parameter:
    return Parameter.from_wire(name, "int", min=low, max=high, step=step)


def test_tenth_steps_have_no_float_noise() -> None:
    assert double("0.1", "0.5", "0.1").grid_values() == [0.1, 0.2, 0.3, 0.4, 0.5]


@pytest.mark.parametrize(
    ("low", "high", "step", "expected"),
    [
        ("0", "1", "0.3", ["0", "0.3", "0.6", "0.9"]),  # max off the grid is left out
        ("0.05", "0.35", "0.1", ["0.05", "0.15", "0.25", "0.35"]),  # min finer than step
        ("-0.3", "0.3", "0.2", ["-0.3", "-0.1", "0.1", "0.3"]),
        ("1e-3", "5e-3", "1e-3", ["0.001", "0.002", "0.003", "0.004", "0.005"]),
        ("0.7", "0.7", "0.1", ["0.7"]),
    ],
)
def test_double_grid_points_are_the_decimal_ones(
    low: str, high: str, step: str, expected: list[str]
) -> None:
    assert double(low, high, step).grid_values() == [float(v) for v in expected]


def test_double_grid_matches_exact_decimal_arithmetic_everywhere() -> None:
    # Accumulating or np.arange-ing floats drifts on most of these; the grid must not.
    for low, step in itertools.product(["0", "0.1", "-1.7", "2.05"], ["0.1", "0.01", "0.07"]):
        high = str(Decimal(low) + 40 * Decimal(step))
        values = double(low, high, step).grid_values()
        expected = [float(Decimal(low) + k * Decimal(step)) for k in range(41)]
        assert values == expected, (low, step)


def test_double_without_step_has_no_grid() -> None:
    with pytest.raises(SpaceError, match="parameter 'x': a grid needs feasibleSpace.step"):
        double("0", "1").grid_values()
    with pytest.raises(SpaceError, match="feasibleSpace.step"):
        double("0", "1").grid_size()


@pytest.mark.parametrize(
    ("low", "high", "step", "expected"),
    [
        ("1", "10", "3", [1, 4, 7, 10]),
        ("1", "9", "3", [1, 4, 7]),
        ("-2", "2", None, [-2, -1, 0, 1, 2]),
        ("5", "5", None, [5]),
    ],
)
def test_int_grid_steps_from_min(
    low: str, high: str, step: str | None, expected: list[int]
) -> None:
    values = integer(low, high, step).grid_values()
    assert values == expected and all(type(v) is int for v in values)


def test_list_grids_are_the_list_in_order() -> None:
    discrete = Parameter.from_wire("d", "discrete", values=["3", "1", "2.5"])
    categorical = Parameter.from_wire("c", "categorical", values=["b", "a"])
    assert discrete.grid_values() == [3, 1, 2.5]
    assert categorical.grid_values() == ["b", "a"]


def test_invalid_parameter_has_no_grid() -> None:
    with pytest.raises(SpaceError, match="5 is greater than max 1"):
        integer("5", "1").grid_values()


def test_grid_size_equals_number_of_grid_values() -> None:
    parameters = [
        double(low, high, step)
        for low, high, step in itertools.product(
            ["0", "0.1", "-2.5"], ["3", "3.05"], ["0.1", "0.7"]
        )
    ] + [integer("0", str(high), str(step)) for high in (0, 3, 9, 10) for step in (1, 3)]
    for parameter in parameters:
        assert parameter.grid_size() == len(parameter.grid_values()), parameter


SPACE = SearchSpace(
    (
        integer("1", "3"),
        Parameter.from_wire("opt", "categorical", values=["sgd", "adam"]),
        double("0.1", "0.3", "0.1"),
    )
)


def test_space_grid_varies_the_first_parameter_slowest() -> None:
    points = list(SPACE.grid())
    expected = [
        {"n": n, "opt": opt, "x": x}
        for n, opt, x in itertools.product([1, 2, 3], ["sgd", "adam"], [0.1, 0.2, 0.3])
    ]
    assert points == expected
    assert SPACE.grid_size() == len(points) == 18


def test_space_grid_is_lazy() -> None:
    huge = SearchSpace((double("0", "1", "1e-12"), integer("0", "10", name="m")))
    assert huge.grid_size() == (10**12 + 1) * 11
    first = list(itertools.islice(huge.grid(), 12))
    assert first[0] == {"x": 0.0, "m": 0}
    assert first[10] == {"x": 0.0, "m": 10}
    assert first[11] == {"x": 1e-12, "m": 0}


def test_space_grid_validates_at_the_call() -> None:
    no_step = SearchSpace((integer("1", "3"), double("0", "1")))
    with pytest.raises(SpaceError, match="feasibleSpace.step"):
        no_step.grid()  # raised before any iteration
    with pytest.raises(SpaceError, match="must list at least one parameter"):
        SearchSpace().grid_size()


def test_a_grid_is_computed_once_per_parameter_and_still_for_unhashable_ones() -> None:
    from tuner.space import _grid

    first, again = double("0.1", "0.9", "0.2"), double("0.1", "0.9", "0.2")
    assert _grid.axis(first) is _grid.axis(again)  # equal parameters: remembered
    assert _grid.axis(double("0.1", "0.7", "0.2")).size == 4
    assert first.contains(0.3) and not first.contains(0.4)
    broken = Parameter("c", "categorical", values=(["a"], ["b"]))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hash(broken)
    assert _grid.axis(broken).size == 2
    assert not broken.contains("a")
