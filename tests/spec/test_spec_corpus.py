"""The invalid corpus: each file under invalid/ breaks one rule and says, in its first line
(``# expect: <path>``), where the issue must be reported; an optional ``# value: <text>``
line gives the bad value the message must quote."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.spec import SpecError, load_file

INVALID = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))


def _header(path: Path) -> tuple[str, str | None]:
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# expect: "), f"{path.name} must start with '# expect: <path>'"
    expect = lines[0].removeprefix("# expect: ").strip()
    value = lines[1].removeprefix("# value: ") if lines[1].startswith("# value: ") else None
    return expect, value


def test_the_corpus_is_large_enough() -> None:
    assert len(INVALID) >= 28


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_invalid_spec_is_refused_at_the_expected_path(path: Path) -> None:
    expect, value = _header(path)
    with pytest.raises(SpecError) as caught:
        load_file(path)
    at_path = [issue for issue in caught.value.issues if issue.path == expect]
    assert at_path, f"no issue at {expect!r}; got: {[str(i) for i in caught.value.issues]}"
    if value is not None:
        assert any(value in issue.message for issue in at_path), at_path
