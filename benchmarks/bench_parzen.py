"""The columnar TPE (`suggestion/algorithms/_parzen.py` and its `_parzen_estimator.py`)
against another copy of it, in one process: the same answers bit for bit, and the CPU time
of ``propose`` alone.

Each copy is a checkout (or an exported tree) or its `suggestion/algorithms` directory; its
`_parzen` (and `_parzen_estimator`, which `_parzen` imports relatively, when the copy has
one) are loaded as a package of their own; the copies run alternately on the same
inputs (Hartmann6's 1000 trials of six doubles in [0, 1], as the latency benchmark), so a
shared, noisy machine slows them alike. CPU time (``time.process_time``), p50 of the
repetitions; the ratio is to the first copy. The answers are compared on that history and
on random histories over every kind of dimension (continuous, log, int, log int, stepped,
categorical), with repeated values and pending rows, both modes, 1 to 8 per call.

    python benchmarks/bench_parzen.py /work/main .
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
from _functions import FUNCTIONS

KINDS = ("continuous", "log", "int", "log int", "stepped", "categorical")


@dataclass(frozen=True)
class Copy:
    """One copy's `propose` and `default_gamma`, and the module of its `Dimension` and
    `Options` (`_parzen_estimator`, or `_parzen` itself in a copy from before the split)."""

    parzen: ModuleType
    estimator: ModuleType


def load(path: str, name: str) -> Copy:
    """The copy at ``path`` (a checkout, its `suggestion/algorithms` directory or a
    `_parzen.py` in one) as the package ``name``: its own `_parzen` and `_parzen_estimator`,
    whatever `suggestion` is installed (the package's `__init__` is not run)."""
    where = Path(path)
    if where.is_file():
        where = where.parent
    elif (where / "suggestion" / "algorithms").is_dir():
        where = where / "suggestion" / "algorithms"
    if not (where / "_parzen.py").is_file():
        raise SystemExit(f"{path}: no _parzen.py there or in suggestion/algorithms under it")
    package = ModuleType(name)
    package.__path__ = [str(where)]
    sys.modules[name] = package  # dataclasses and relative imports look their module up
    parzen = importlib.import_module(f"{name}._parzen")
    has_estimator = (where / "_parzen_estimator.py").is_file()
    estimator = importlib.import_module(f"{name}._parzen_estimator") if has_estimator else parzen
    return Copy(parzen, estimator)


def dimension(copy: Copy, kind: str, choices: int) -> object:
    estimator = copy.estimator
    return {
        "unit": lambda: estimator.Dimension(0.0, 1.0),
        "continuous": lambda: estimator.Dimension(-2.0, 3.0),
        "log": lambda: estimator.Dimension(1e-4, 10.0, log=True),
        "int": lambda: estimator.Dimension(0.0, 9.0, step=1.0),
        "log int": lambda: estimator.Dimension(1.0, 64.0, step=1.0, log=True),
        "stepped": lambda: estimator.Dimension(0.0, 1.0, step=0.25),
        "categorical": lambda: estimator.Dimension(choices=choices),
    }[kind]()


def column(kind: str, choices: int, rng: np.random.Generator, n: int) -> np.ndarray:
    if kind == "continuous":
        return rng.uniform(-2, 3, n)
    if kind == "log":
        return np.exp(rng.uniform(np.log(1e-4), np.log(10), n))
    if kind == "int":
        return rng.integers(0, 10, n).astype(float)
    if kind == "log int":
        return rng.integers(1, 65, n).astype(float)
    if kind == "stepped":
        return rng.integers(0, 5, n) * 0.25
    return rng.integers(0, choices, n).astype(float)


@dataclass
class Case:
    kinds: list[str]
    choices: list[int]
    rows: np.ndarray
    values: np.ndarray
    pending: np.ndarray
    maximize: bool = False
    n_ei: int = 24
    prior: float = 1.0
    seed: int = 1


def propose(copy: Copy, case: Case, count: int, multivariate: bool) -> bytes:
    points = copy.parzen.propose(
        case.rows,
        case.values,
        case.pending,
        [dimension(copy, k, c) for k, c in zip(case.kinds, case.choices, strict=True)],
        count=count,
        maximize=case.maximize,
        gamma=copy.parzen.default_gamma,
        multivariate=multivariate,
        options=copy.estimator.Options(n_ei_candidates=case.n_ei, prior_weight=case.prior),
        rng=np.random.RandomState(case.seed),
    )
    return bytes(points.tobytes())


def hartmann(n: int = 1000) -> Case:
    xs = np.random.default_rng(0).random((n, 6))
    values = np.array([FUNCTIONS["hartmann6"](x) for x in xs])
    return Case(["unit"] * 6, [0] * 6, xs, values, np.zeros(n, dtype=bool))


def random_case(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 2, 3, 11, 30, 99, 100, 150, 400, 1000]))
    kinds = [str(k) for k in rng.choice(KINDS, size=int(rng.integers(1, 7)))]
    choices = [int(rng.integers(2, 6)) for _ in kinds]
    rows = np.stack([column(k, c, rng, n) for k, c in zip(kinds, choices, strict=True)], axis=1)
    if rng.integers(2):  # repeated rows
        rows[rng.integers(0, n, n // 4)] = rows[rng.integers(0, n, n // 4)]
    return Case(
        kinds,
        choices,
        rows,
        rng.normal(size=n),
        rng.random(n) < float(rng.choice([0.0, 0.05, 0.3])),
        maximize=bool(rng.integers(2)),
        n_ei=int(rng.choice([24, 24, 7, 1])),
        prior=float(rng.choice([1.0, 0.5, 2.0])),
        seed=seed,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "copies",
        nargs="+",
        help="checkouts or their suggestion/algorithms directories (or _parzen.py files in"
        " them); ratios are to the first",
    )
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--cases", type=int, default=100, help="random histories compared")
    args = parser.parse_args(argv)
    copies = [load(path, f"_parzen_copy_{i}") for i, path in enumerate(args.copies)]
    for i, copy in enumerate(copies):
        where = " and ".join(sorted({copy.parzen.__file__, copy.estimator.__file__}))
        print(f"copy {i}: {where}")

    cases = [hartmann()] + [random_case(seed) for seed in range(args.cases)]
    compared = 0
    for case in cases:
        for multivariate in (False, True):
            for count in (1, 8) if case is cases[0] else (1, 2, 8):
                answers = {propose(c, case, count, multivariate) for c in copies}
                if len(answers) != 1:
                    print(f"DIFFERENT answers: seed {case.seed}, {case.kinds}, {count} per call")
                    return 1
                compared += 1
    print(f"same answers bit for bit in {compared} comparisons")

    case = hartmann()
    files = " | ".join(f"copy {i} CPU p50 ms (ratio)" for i in range(len(copies)))
    print(f"| mode | per call | {files} |")
    for multivariate in (False, True):
        for count in (1, 8):
            times: list[list[float]] = [[] for _ in copies]
            for _ in range(args.reps):
                for i, copy in enumerate(copies):
                    start = time.process_time()
                    propose(copy, case, count, multivariate)
                    times[i].append(time.process_time() - start)
            p50 = [float(np.median(t)) for t in times]
            cells = " | ".join(f"{1000 * t:.1f} ({t / p50[0]:.2f})" for t in p50)
            mode = "multivariate-tpe" if multivariate else "tpe"
            print(f"| {mode} | {count} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
