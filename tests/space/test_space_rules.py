"""Every rule of Parameter.problems() and SearchSpace.problems(), one test per rule."""

from __future__ import annotations

import pytest

from tuner.space import Distribution, Parameter, ParameterType, Problem, SearchSpace, SpaceError


def double(name: str = "lr", **space: object) -> Parameter:
    return Parameter.from_wire(name, "double", **{"min": "0.01", "max": "0.1", **space})  # type: ignore[arg-type]


def integer(name: str = "n", **space: object) -> Parameter:
    return Parameter.from_wire(name, "int", **{"min": "1", "max": "10", **space})  # type: ignore[arg-type]


def discrete(*values: object, **space: object) -> Parameter:
    return Parameter.from_wire("d", "discrete", values=values, **space)  # type: ignore[arg-type]


def categorical(*values: object, **space: object) -> Parameter:
    return Parameter.from_wire("c", "categorical", values=values, **space)  # type: ignore[arg-type]


def only(parameter: Parameter | SearchSpace, field: str) -> str:
    """The message of the single problem reported for ``field``."""
    messages = [p.message for p in parameter.problems() if p.field == field]
    assert len(messages) == 1, parameter.problems()
    return messages[0]


@pytest.mark.parametrize(
    "parameter",
    [
        double(),
        double(step="0.01"),
        double(distribution="logUniform"),
        double(min="-1", max="1", distribution="normal", step="0.5"),
        double(min="1", max="1"),
        integer(),
        integer(step="3", distribution="logNormal"),
        integer(min="7", max="7", step="2"),
        discrete("1", "2.5", "-3"),
        discrete(1, 2.5, distribution="uniform"),
        categorical("sgd", "adam", ""),
    ],
)
def test_valid_definitions_have_no_problems(parameter: Parameter) -> None:
    assert parameter.problems() == []
    parameter.check()


def test_empty_name_is_a_problem() -> None:
    assert only(double(name=""), "name") == "must not be empty"


@pytest.mark.parametrize("build", [double, integer])
@pytest.mark.parametrize("bound", ["min", "max"])
def test_missing_bound_is_a_problem(build, bound: str) -> None:
    parameter = build(**{bound: ""})
    assert "is required for parameterType" in only(parameter, f"feasibleSpace.{bound}")


def test_min_above_max_names_both_values() -> None:
    assert only(integer(min="5", max="1"), "feasibleSpace.min") == "5 is greater than max 1"
    assert only(double(min="0.5", max="0.25"), "feasibleSpace.min") == (
        "0.5 is greater than max 0.25"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1.5", "1.5 is not an integer"),
        ("1.0", "1.0 is not an integer"),
        (2.0, "2.0 is not an integer"),
        ("abc", "'abc' is not a number"),
        ("inf", "inf is not a finite number"),
        (True, "True is not a number"),
    ],
)
def test_int_bounds_must_be_integers(raw: object, message: str) -> None:
    assert only(integer(min=raw), "feasibleSpace.min") == message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("nan", "nan is not a finite number"),
        ("1e999", "inf is not a finite number"),
        ("0x10", "'0x10' is not a number"),
        ([1], "[1] is not a number"),
    ],
)
def test_double_bounds_must_be_finite_numbers(raw: object, message: str) -> None:
    assert only(double(max=raw), "feasibleSpace.max") == message


@pytest.mark.parametrize(("step", "shown"), [("0", "0.0"), ("-0.5", "-0.5")])
def test_step_must_be_positive(step: str, shown: str) -> None:
    assert only(double(step=step), "feasibleSpace.step") == f"{shown} is not greater than 0"


def test_int_step_must_be_an_integer() -> None:
    assert only(integer(step="0.5"), "feasibleSpace.step") == "0.5 is not an integer"


def test_step_larger_than_range_is_a_problem() -> None:
    message = only(integer(min="1", max="4", step="4"), "feasibleSpace.step")
    assert message == "4 is larger than the range from min 1 to max 4"
    # Exactly the range is fine: the grid is then [min, max].
    assert double(min="0.1", max="0.3", step="0.2").problems() == []


def test_list_is_refused_for_ranges() -> None:
    parameter = Parameter.from_wire("n", "int", min="1", max="3", values=["1", "2"])
    assert only(parameter, "feasibleSpace.list") == (
        "['1', '2'] is not supported for parameterType int; set min and max instead"
    )


@pytest.mark.parametrize("build", [discrete, categorical])
@pytest.mark.parametrize("field", ["min", "max", "step"])
def test_min_max_step_are_refused_for_lists(build, field: str) -> None:
    message = only(build("1", "2", **{field: "1"}), f"feasibleSpace.{field}")
    assert message.startswith("1 is not supported for parameterType")


@pytest.mark.parametrize("build", [discrete, categorical])
def test_empty_list_is_a_problem(build) -> None:
    assert "must not be empty" in only(build(), "feasibleSpace.list")


def test_duplicate_discrete_values_compare_numerically() -> None:
    assert only(discrete("1", "2", "1.0"), "feasibleSpace.list[2]") == (
        "1.0 duplicates list[0]; list values must be unique"
    )


def test_duplicate_categorical_values_are_a_problem() -> None:
    assert "duplicates list[0]" in only(categorical("a", "b", "a"), "feasibleSpace.list[2]")


@pytest.mark.parametrize(
    ("entry", "message"),
    [("abc", "'abc' is not a number"), ("inf", "inf is not a finite number")],
)
def test_discrete_entries_must_be_finite_numbers(entry: str, message: str) -> None:
    assert only(discrete("1", entry), "feasibleSpace.list[1]") == message


def test_categorical_entries_must_be_strings() -> None:
    assert only(categorical("a", 1), "feasibleSpace.list[1]") == "1 is not a string"


@pytest.mark.parametrize("distribution", ["logUniform", "normal", "logNormal"])
def test_non_uniform_distributions_are_refused_for_lists(distribution: str) -> None:
    message = only(categorical("a", distribution=distribution), "feasibleSpace.distribution")
    assert message.startswith(f"{distribution!r} is not supported for parameterType categorical")


@pytest.mark.parametrize("distribution", ["logUniform", "logNormal"])
@pytest.mark.parametrize("low", ["0", "-1"])
def test_log_distributions_need_positive_min(distribution: str, low: str) -> None:
    message = only(integer(min=low, distribution=distribution), "feasibleSpace.min")
    assert message == f"{low} is not greater than 0, which distribution {distribution} requires"


def test_unknown_type_and_distribution_are_refused_at_construction() -> None:
    with pytest.raises(SpaceError, match=r"parameterType: 'float' is not one of double, int"):
        Parameter.from_wire("x", "float", min="0", max="1")
    with pytest.raises(SpaceError, match=r"feasibleSpace.distribution: 'gauss' is not one of"):
        Parameter.from_wire("x", "double", min="0", max="1", distribution="gauss")


def test_every_problem_is_listed_at_once() -> None:
    parameter = Parameter.from_wire("", "int", min="1.5", step="-1", values=["3"])
    assert {p.field for p in parameter.problems()} == {
        "name",
        "feasibleSpace.min",
        "feasibleSpace.max",
        "feasibleSpace.list",
        "feasibleSpace.step",
    }


def test_check_raises_with_every_problem() -> None:
    with pytest.raises(SpaceError) as caught:
        integer(min="5", max="1", step="0").check()
    assert str(caught.value) == (
        "parameter 'n': feasibleSpace.min: 5 is greater than max 1;"
        " feasibleSpace.step: 0 is not greater than 0"
    )


def test_empty_string_means_unset_like_katib() -> None:
    parameter = Parameter.from_wire("lr", "double", min="0.1", max="1", step="", distribution="")
    assert parameter.step is None and parameter.distribution is None
    assert parameter == Parameter("lr", ParameterType.DOUBLE, min=0.1, max=1.0)


def test_space_without_parameters_is_a_problem() -> None:
    assert SearchSpace().problems() == [Problem("parameters", "must list at least one parameter")]


def test_space_prefixes_parameter_problems_with_their_index() -> None:
    space = SearchSpace((double(), integer(min="5", max="1")))
    assert space.problems() == [
        Problem("parameters[1].feasibleSpace.min", "5 is greater than max 1")
    ]


def test_space_refuses_duplicate_names() -> None:
    space = SearchSpace((double(name="x"), integer(name="y"), integer(name="x")))
    assert only(space, "parameters[2].name") == (
        "'x' duplicates parameters[0].name; parameter names must be unique"
    )
    with pytest.raises(SpaceError, match=r"parameters\[2\].name"):
        space.check()


def test_distribution_enum_round_trips_its_yaml_spelling() -> None:
    parameter = double(distribution="logUniform")
    assert parameter.distribution is Distribution.LOG_UNIFORM and parameter.is_log
    assert not double(distribution="normal").is_log
