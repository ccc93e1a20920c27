"""Loading refuses hostile YAML quickly and with a clear issue: alias bombs, deep nesting,
huge texts, numbers Python cannot convert; error messages never hold a whole huge value."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tuner.spec import SpecError, load_file, loads
from tuner.spec._issues import short_repr
from tuner.spec._yaml import MAX_DEPTH, MAX_EXPANDED_NODES, MAX_TEXT_CHARS

VALID = Path(__file__).parent / "valid" / "random-job.yaml"


def _experiment_text() -> str:
    return VALID.read_text(encoding="utf-8")


def _alias_bomb(levels: int) -> str:
    """Nine-fold nested aliases under metadata.annotations: 9**levels strings once expanded,
    in a text of about 100 bytes per level."""
    lines = ['    a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        ref = f"*a{i - 1}"
        lines.append(f"    a{i}: &a{i} [{','.join([ref] * 9)}]")
    annotations = "  annotations:\n" + "\n".join(lines) + "\n"
    return _experiment_text().replace("metadata:\n", "metadata:\n" + annotations, 1)


def _issue_text(error: SpecError) -> str:
    return "\n".join(map(str, error.issues))


def test_alias_bomb_is_refused_before_it_is_expanded() -> None:
    # 9**12 = 282 billion strings: expanded (or repr'd) it would take hours and terabytes.
    text = _alias_bomb(12)
    assert len(text) < 4096
    with pytest.raises(SpecError) as caught:
        loads(text)
    message = _issue_text(caught.value)
    assert f"aliases expand to more than {MAX_EXPANDED_NODES} nodes" in message
    assert message.startswith("line ")  # where in the text


def test_aliases_within_the_bound_are_still_read() -> None:
    text = _experiment_text().replace(
        "  parameters:\n    - name: lr\n      parameterType: double\n      feasibleSpace:\n",
        "  parameters:\n    - name: lr\n      parameterType: double\n      feasibleSpace: &fs\n",
    )
    assert "&fs" in text
    (experiment,) = loads(text)
    assert experiment.spec.parameters[0].name == "lr"


def test_recursive_alias_is_refused() -> None:
    text = _experiment_text().replace("metadata:\n", "metadata:\n  labels: &self {x: *self}\n", 1)
    with pytest.raises(SpecError) as caught:
        loads(text)
    assert "YAML" in _issue_text(caught.value)


def test_nesting_10000_levels_is_refused_without_recursion_error() -> None:
    text = "a: " + "[" * 10_000 + "]" * 10_000 + "\n"
    with pytest.raises(SpecError) as caught:
        loads(text)
    assert f"nested more than {MAX_DEPTH} levels deep" in _issue_text(caught.value)


def test_deep_flow_mapping_is_refused_without_recursion_error() -> None:
    text = "{a: " * 5_000 + "1" + "}" * 5_000 + "\n"
    with pytest.raises(SpecError) as caught:
        loads(text)
    assert "YAML refused" in _issue_text(caught.value)


def test_text_beyond_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(_experiment_text() + "# " + "x" * MAX_TEXT_CHARS + "\n", encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_file(big)
    assert f"more than the {MAX_TEXT_CHARS} accepted" in _issue_text(caught.value)


def test_integer_beyond_python_conversion_limit_is_an_issue() -> None:
    digits = sys.get_int_max_str_digits() + 10
    text = _experiment_text().replace("maxTrialCount: 12", "maxTrialCount: " + "9" * digits)
    with pytest.raises(SpecError) as caught:
        loads(text)
    assert "a value cannot be read" in _issue_text(caught.value)


def test_short_repr_of_an_alias_bomb_shaped_value_is_short_and_quick() -> None:
    # A list holding itself nine times, eight levels deep: its full repr is 9**8 items long.
    value: object = ["lol"] * 9
    for _ in range(8):
        value = [value] * 9
    text = short_repr(value)
    assert len(text) <= 80
    assert text.startswith("[[")


def test_short_repr_of_a_huge_integer_does_not_raise() -> None:
    text = short_repr(10**5000)
    assert "at least 5000 digits" in text
    assert len(text) <= 80


def test_huge_bad_value_is_cut_in_the_message() -> None:
    text = _experiment_text().replace("name: random-example", "name: " + "X" * 20_000)
    with pytest.raises(SpecError) as caught:
        loads(text)
    assert "metadata.name" in str(caught.value)
    assert len(str(caught.value)) < 2_000
