"""Smoke test of benchmarks/bench_dashboard.py: the smallest run prints its table (API rows
timed, browser rows empty with --no-browser). No timing is asserted."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_benchmark_prints_its_table(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(
        "bench_dashboard", BENCHMARKS / "bench_dashboard.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_dashboard", bench)
    spec.loader.exec_module(bench)

    argv = ["--trials", "12", "--reps", "1", "--no-browser", "--no-write"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[0] == "| measure | trials | reps | cold s | warm s |"
    api = [r for r in rows if r.startswith("| GET ")]
    assert len(api) == 2 and all("| 12 | 1 |" in r for r in api)
    assert all(float(r.split("|")[4]) > 0 for r in api)
    assert "no browser run" in out
