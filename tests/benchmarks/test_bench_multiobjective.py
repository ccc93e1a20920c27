"""Smoke test of the multi-objective benchmark: its hypervolume agrees with Optuna's, and
main() prints the table with a row per run and the tuner/optuna ratios. No timing asserted."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from optuna._hypervolume import compute_hypervolume

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(
        "bench_multiobjective", BENCHMARKS / "bench_multiobjective.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_multiobjective", module)
    spec.loader.exec_module(module)
    return module


def test_hypervolume_agrees_with_optunas(bench: ModuleType) -> None:
    rng = np.random.default_rng(3)
    points = [tuple(p) for p in rng.uniform(0, 1.3, size=(40, 2))]
    reference = (1.1, 1.2)
    inside = np.array([p for p in points if p[0] < reference[0] and p[1] < reference[1]])
    expected = compute_hypervolume(inside, np.array(reference))
    assert bench.hypervolume(points, reference) == pytest.approx(expected)
    # The true ZDT1 front, finely sampled, comes close to the closed form.
    front = [(f, 1 - f**0.5) for f in np.linspace(0, 1, 2001)]
    assert bench.hypervolume(front, bench.REFERENCE) == pytest.approx(
        bench.TRUE_FRONT_HYPERVOLUME, abs=1e-2
    )


def test_main_prints_every_run_and_the_ratios(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--seeds", "1", "--trials", "6", "--dims", "3", "--population", "4", "--no-write"]
    assert bench.main(argv) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    names = [row.strip("| ").split(" | ")[0] for row in rows[1:]]
    assert names == [
        "tuner nsga2",
        "optuna nsga2",
        "tuner tpe",
        "optuna tpe",
        "tuner random",
        "tuner nsga2 / optuna nsga2",
        "tuner tpe / optuna tpe",
    ]
    for row in rows[1:6]:
        assert 0 < float(row.strip("| ").split(" | ")[1]) <= bench.TRUE_FRONT_HYPERVOLUME
