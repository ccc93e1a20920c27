"""`tuner validate` over real files, run as a real subprocess: exit codes and messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INVALID = sorted((ROOT / "tests" / "spec" / "invalid").glob("*.yaml"))
VALID = sorted((ROOT / "tests" / "spec" / "valid").glob("*.yaml"))


def _is_experiment(path: Path) -> bool:
    return "kind: Experiment" in path.read_text(encoding="utf-8")


# The Katib corpus (examples/katib/) holds refused files on purpose; its own test checks it.
EXAMPLES = sorted(
    p
    for p in (ROOT / "examples").rglob("*.yaml")
    if _is_experiment(p) and not p.is_relative_to(ROOT / "examples" / "katib")
)


def tuner(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def expected_path(spec_file: Path) -> str:
    first = spec_file.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{spec_file} lacks its '# expect:' line"
    return first.removeprefix("# expect: ").strip()


def test_corpus_is_large_enough() -> None:
    assert len(INVALID) >= 25
    assert EXAMPLES, "examples/ holds no Experiment YAML"


@pytest.mark.parametrize("spec_file", INVALID, ids=lambda p: p.stem)
def test_invalid_spec_exits_2_naming_the_field(spec_file: Path) -> None:
    result = tuner("validate", spec_file)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    prefix = f"{spec_file}: {expected_path(spec_file)}: "
    assert any(line.startswith(prefix) for line in lines), (prefix, lines)
    assert f"{spec_file}: valid" not in lines


@pytest.mark.parametrize("spec_file", VALID + EXAMPLES, ids=lambda p: p.stem)
def test_valid_spec_exits_0(spec_file: Path) -> None:
    result = tuner("validate", spec_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{spec_file}: valid"


def test_all_files_are_checked_and_reported_together() -> None:
    bad, good = INVALID[0], VALID[0]
    result = tuner("validate", bad, good)
    assert result.returncode == 2
    assert f"{good}: valid" in result.stdout.splitlines()
    assert any(line.startswith(f"{bad}: ") for line in result.stdout.splitlines())


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = tuner("validate", missing)
    assert result.returncode == 2
    assert result.stdout.startswith(f"{missing}: cannot read")


def test_empty_file_has_no_experiment(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n", encoding="utf-8")
    result = tuner("validate", empty)
    assert result.returncode == 2
    assert result.stdout.startswith(f"{empty}: no Experiment found")


def test_a_collector_kind_tuner_has_no_collector_for_is_refused() -> None:
    # Katib's spec allows TensorFlowEvent; the collectors' registry says tuner has none.
    unsupported = ROOT / "tests" / "cli" / "collector-kind-unsupported.yaml"
    result = tuner("validate", unsupported)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"{unsupported}: spec.metricsCollectorSpec.collector.kind: 'TensorFlowEvent' is not"
        " supported by tuner; use one of File, None, Push, StdOut"
    ]
