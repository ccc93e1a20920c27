"""Smoke tests of the benchmarks: each main() runs with the smallest settings and
prints a table with the expected columns; RESULTS.md sections are replaced, not clobbered.
No timing is asserted. The orchestration benchmark runs in a process of its own."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """Imports a benchmark script by file name, its sibling helpers made importable."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))

    def load_module(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        # dataclasses look their module up in sys.modules while the module executes.
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    return load_module


def tables(output: str) -> list[list[list[str]]]:
    """Every Markdown table in ``output`` as rows of cells, the separator row dropped."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*output.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def test_latency_benchmark_prints_one_row_per_cell(
    load: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("bench_suggestion_latency")
    argv = ["--algorithms", "random", "--counts", "1", "--trials", "5"]
    assert bench.main([*argv, "--min-reps", "1", "--max-reps", "1", "--no-write"]) == 0

    table, anchored = tables(capsys.readouterr().out)
    header, *rows = table
    assert header == [
        "algorithm",
        "per call",
        "trials",
        "reps",
        "cold p50 ms",
        "cold p95 ms",
        "warm p50 ms",
        "warm p95 ms",
    ]
    assert [row[:4] for row in rows] == [["random", "1", "5", "1"]]
    assert all(float(cell.replace(",", "")) > 0 for cell in rows[0][4:])
    header, *rows = anchored
    assert header[:3] == ["algorithm", "per call", "trials"] and "anchor" in header
    assert [row[:3] for row in rows] == [["random", "1", "5"]]
    assert rows[0][header.index("anchor")].startswith("decode only")


def test_concurrency_benchmark_reports_latency_and_memory(
    load: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("bench_concurrency")
    argv = ["--experiments", "2", "--trials", "5", "--calls", "1", "--no-write"]
    assert bench.main(argv) == 0
    ((header, row),) = tables(capsys.readouterr().out)
    assert header[:4] == ["algorithm", "experiments", "trials each", "calls"]
    assert row[:4] == ["tpe", "2", "5", "2"]
    assert float(row[header.index("RSS peak MB")].replace(",", "")) > 0


def test_sample_efficiency_benchmark_prints_regrets_and_ratios(
    load: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("bench_sample_efficiency")
    argv = ["--seeds", "1", "--trials", "5", "--functions", "branin", "--workers", "1"]
    assert bench.main([*argv, "--algorithms", "tpe", "optuna-tpe", "--no-write"]) == 0

    regrets, ratios = tables(capsys.readouterr().out)
    header, *rows = regrets
    assert header == ["function", "algorithm", "regret@5", "s/run"]
    assert [row[:2] for row in rows] == [["branin", "tpe"], ["branin", "optuna-tpe"]]
    for row in rows:
        regret = float(row[2])
        assert 0 <= regret < math.inf
    assert ratios[0] == ["algorithm", "branin ÷ optuna-tpe"]
    assert [row[0] for row in ratios[1:]] == ["tpe"]


def test_pbt_benchmark_compares_pbt_with_random_at_equal_compute(
    load: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("bench_pbt")
    assert bench.main(["--seeds", "1", "--trials", "16", "--no-write"]) == 0

    ((header, *rows),) = tables(capsys.readouterr().out)
    assert header == ["variant", "best accuracy", "vs random", "worst seed", "epochs", "s/run"]
    assert [row[0] for row in rows] == list(bench.VARIANTS)
    epochs = {row[0]: int(row[header.index("epochs")]) for row in rows}
    # Random trials start from scratch; pbt's best trial continued its ancestors' training.
    assert epochs["random (from scratch)"] == 20
    assert epochs["pbt, perturb"] > 20


def test_a_section_is_replaced_and_the_others_kept(
    load: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    kit = load("_benchkit")
    path = tmp_path / "RESULTS.md"
    path.write_text(
        "# Benchmark results\n\n## Other\n\nkeep me\n\n## Mine\n\nold\n\n## Last\n\nme too\n"
    )

    kit.write_section("Mine", "## Mine\n\nnew\n", path)
    kit.write_section("Added", "## Added\n\nappended\n", path)

    assert path.read_text() == (
        "# Benchmark results\n\n## Other\n\nkeep me\n\n## Mine\n\nnew\n\n## Last\n\nme too\n"
        "\n## Added\n\nappended\n"
    )


def test_test_functions_reach_their_known_minima(load: Callable[[str], ModuleType]) -> None:
    functions = load("_functions").FUNCTIONS
    minimisers = {
        "branin": [math.pi, 2.275],
        "hartmann6": [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573],
        "rosenbrock4": [1.0, 1.0, 1.0, 1.0],
    }
    for name, x in minimisers.items():
        f = functions[name]
        assert f(x) == pytest.approx(f.optimum, abs=1e-6), name
        assert all(lo <= xi <= hi for xi, (_, lo, hi) in zip(x, f.bounds, strict=True)), name


def test_orchestration_benchmark_prints_tuner_optuna_and_the_floor(tmp_path: Path) -> None:
    # Its own process: it makes itself a child subreaper and runs `tuner run`.
    argv = ["--trials", "3", "--commands", "echo", "--parallel", "2", "--no-write"]
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_orchestration.py"), *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (header, row), *_ = [t for t in tables(done.stdout) if t[0][0] == "command (alone)"]
    assert header[1:] == [
        "P",
        "tuner trials/s",
        "Optuna trials/s",
        "tuner overhead ms",
        "Optuna overhead ms",
        "ratio",
        "tuner CPU ms",
        "Optuna CPU ms",
        "tuner span ms",
        "Optuna span ms",
        "span ratio",
        "floor ms",
    ]
    assert row[0].startswith("`/bin/echo") and row[1] == "2"
    assert all(math.isfinite(float(cell)) for cell in row[2:])
    assert float(row[2]) > 0 and float(row[3]) > 0
