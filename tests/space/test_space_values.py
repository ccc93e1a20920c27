"""Wire strings: Parameter.parse/format, their round trip, and the SearchSpace dict forms."""

from __future__ import annotations

import math
import random
import struct
import sys

import numpy as np
import pytest

from tuner.space import Parameter, SearchSpace, SpaceError


def double(**space: object) -> Parameter:
    return Parameter.from_wire("lr", "double", **{"min": "-1e308", "max": "1e308", **space})  # type: ignore[arg-type]


def integer(**space: object) -> Parameter:
    return Parameter.from_wire("n", "int", **{"min": "-1000", "max": "1000", **space})  # type: ignore[arg-type]


DISCRETE = Parameter.from_wire("d", "discrete", values=["1", "2.5", "0.1", "1e-3"])
CATEGORICAL = Parameter.from_wire("opt", "categorical", values=["sgd", "adam"])


@pytest.mark.parametrize(("text", "value"), [("3", 3), (" -2 ", -2), ("+7", 7), ("007", 7)])
def test_int_parses_integer_literals(text: str, value: int) -> None:
    parsed = integer().parse(text)
    assert parsed == value and type(parsed) is int


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("3.0", "is not an integer"),
        ("1e3", "is not an integer"),
        ("nan", "is not an integer"),
        ("abc", "is not a number"),
        ("", "is not a number"),
        ("1_000", "is not a number"),
    ],
)
def test_int_refuses_anything_else_naming_parameter_and_text(text: str, reason: str) -> None:
    with pytest.raises(SpaceError) as caught:
        integer().parse(text)
    assert str(caught.value) == f"parameter 'n': {text!r} {reason}"


@pytest.mark.parametrize(
    ("text", "value"),
    [("0.5", 0.5), (" 0.5 ", 0.5), ("1e-3", 0.001), ("3", 3.0), (".5", 0.5), ("5.", 5.0)],
)
def test_double_parses_decimal_literals_to_float(text: str, value: float) -> None:
    parsed = double().parse(text)
    assert parsed == value and type(parsed) is float


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("nan", "is not a finite number"),
        ("inf", "is not a finite number"),
        ("-Infinity", "is not a finite number"),
        ("1e999", "overflows a double"),
        ("0x1p3", "is not a number"),
        ("1_0.5", "is not a number"),
        ("", "is not a number"),
        ("0.5.1", "is not a number"),
    ],
)
def test_double_refuses_non_finite_and_odd_syntax(text: str, reason: str) -> None:
    with pytest.raises(SpaceError) as caught:
        double().parse(text)
    assert str(caught.value) == f"parameter 'lr': {text!r} {reason}"


def test_discrete_parse_returns_the_lists_own_typed_entry() -> None:
    one = DISCRETE.parse("1.0")
    assert one == 1 and type(one) is int
    assert DISCRETE.parse("2.50") == 2.5
    assert DISCRETE.parse("0.001") == 0.001
    with pytest.raises(
        SpaceError, match=r"'3' is not in feasibleSpace.list \[1, 2.5, 0.1, 0.001\]"
    ):
        DISCRETE.parse("3")


def test_categorical_parse_is_exact() -> None:
    assert CATEGORICAL.parse("adam") == "adam"
    with pytest.raises(SpaceError, match="' adam' is not in feasibleSpace.list"):
        CATEGORICAL.parse(" adam")


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(SpaceError, match="3 is not a string"):
        integer().parse(3)  # type: ignore[arg-type]


def test_int_format_never_has_a_decimal_point() -> None:
    assert integer().format(3) == "3"
    assert integer().format(3.0) == "3"
    assert integer().format(np.int64(-4)) == "-4"
    for bad in (2.5, True, "3", math.nan):
        with pytest.raises(SpaceError, match="is not an integer"):
            integer().format(bad)


def test_double_format_is_repr_of_the_float() -> None:
    assert double().format(3) == "3.0"
    assert double().format(0.1) == "0.1"
    assert double().format(1e-300) == "1e-300"
    assert double().format(np.float32(0.5)) == "0.5"
    assert double().format(np.float64(0.1)) == "0.1"
    for bad in (math.inf, math.nan, "0.1", False):
        with pytest.raises(SpaceError, match="is not a finite number"):
            double().format(bad)


def test_discrete_format_uses_the_matching_entry() -> None:
    assert DISCRETE.format(1) == "1"
    assert DISCRETE.format(1.0) == "1"
    assert DISCRETE.format(2.5) == "2.5"
    with pytest.raises(SpaceError, match="7 is not in feasibleSpace.list"):
        DISCRETE.format(7)
    with pytest.raises(SpaceError, match="'1' is not in feasibleSpace.list"):
        DISCRETE.format("1")


def test_categorical_format_is_unchanged_and_checked() -> None:
    assert CATEGORICAL.format("sgd") == "sgd"
    with pytest.raises(SpaceError, match="'rmsprop' is not in feasibleSpace.list"):
        CATEGORICAL.format("rmsprop")


def _edge_floats() -> list[float]:
    return [
        0.1,
        0.2,
        0.1 + 0.2,
        1 / 3,
        -0.0,
        0.0,
        1e-300,
        5e-324,  # smallest subnormal
        sys.float_info.min,
        sys.float_info.max,
        -sys.float_info.max,
        2.0**53 + 2,
        123456789.0,
        1e16,
        3.0,
    ]


def _random_floats(count: int) -> list[float]:
    rng = random.Random(20240611)
    floats = [rng.uniform(-1e6, 1e6) for _ in range(count)]
    # Random bit patterns reach every exponent, subnormals included.
    for _ in range(count):
        (value,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
        if math.isfinite(value):
            floats.append(value)
    return floats


def test_double_round_trip_is_exact_for_every_float() -> None:
    parameter = double()
    for value in _edge_floats() + _random_floats(5000):
        text = parameter.format(value)
        back = parameter.parse(text)
        assert back == value and float(text) == value, (value, text)
        assert math.copysign(1.0, back) == math.copysign(1.0, value), (value, text)
        assert parameter.format(back) == text


def test_int_round_trip_is_exact() -> None:
    parameter = integer()
    rng = random.Random(7)
    for value in [0, -1, 2**63, -(2**80)] + [rng.randint(-(10**12), 10**12) for _ in range(500)]:
        assert parameter.parse(parameter.format(value)) == value


def test_discrete_and_categorical_round_trip() -> None:
    for parameter in (DISCRETE, CATEGORICAL):
        for value in parameter.values:
            back = parameter.parse(parameter.format(value))
            assert back == value and type(back) is type(value)


SPACE = SearchSpace((double(), integer(), CATEGORICAL))


def test_space_parse_and_format_keep_parameter_order() -> None:
    wire = {"opt": "adam", "n": "3", "lr": "0.25"}
    assignment = SPACE.parse(wire)
    assert list(assignment.items()) == [("lr", 0.25), ("n", 3), ("opt", "adam")]
    assert SPACE.format(assignment) == {"lr": "0.25", "n": "3", "opt": "adam"}


def test_space_parse_names_unknown_and_missing_parameters() -> None:
    with pytest.raises(SpaceError) as caught:
        SPACE.parse({"lr": "0.1", "momentum": "0.9"})
    assert str(caught.value) == (
        "unknown parameter 'momentum'; missing parameter 'n', 'opt'; the space has 'lr', 'n', 'opt'"
    )
    with pytest.raises(SpaceError, match="missing parameter 'opt'"):
        SPACE.format({"lr": 0.1, "n": 1})


def test_space_parse_reports_the_bad_value() -> None:
    with pytest.raises(SpaceError, match="parameter 'n': '2.5' is not an integer"):
        SPACE.parse({"lr": "0.1", "n": "2.5", "opt": "sgd"})
