"""Multi-objective search: hypervolume after N trials on ZDT1 for tuner's ``nsga2`` and
multi-objective ``tpe`` over gRPC beside the same Optuna samplers driven directly (median
over seeds), with tuner's ``random`` for scale.

Through tuner: a real gRPC suggestion server in this process; each GetSuggestions call
carries every trial so far with both objectives in its observation (``f1``, and ``f2`` named
by tuner's objectives setting) and asks for one point, evaluated before the next call, as a
controller with ``parallelTrialCount: 1`` would. Directly: ``study.optimize`` with
``NSGAIISampler`` / ``TPESampler`` with the same settings and ``seed``. tuner derives each
call's sampler seed from ``random_state`` and the trial count (restart-safe), so the two
paths draw different numbers from the same seed: compare medians, not single runs.

ZDT1 with ``--dims`` variables in [0, 1] (both objectives minimised; the front is
``f2 = 1 - sqrt(f1)``); hypervolume of the trials' front against the reference point
(1.1, 11), 2-D sweep (checked against Optuna's ``compute_hypervolume`` in
tests/benchmarks). The true front's hypervolume is 12.1 - 1/3 = 11.767.

    python benchmarks/bench_multiobjective.py                 # full run, writes RESULTS.md
    python benchmarks/bench_multiobjective.py --seeds 2 --trials 20 --no-write
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence

import _benchkit  # a sibling: a script's own folder is first on sys.path
import grpc
import numpy as np
import optuna

from suggestion.service import create_server
from tuner.protos import api_pb2, api_pb2_grpc
from tuner.space import OBJECTIVES_SETTING, Direction, format_objectives

HEADING = "Multi-objective (ZDT1 hypervolume)"
REFERENCE = (1.1, 11.0)
TRUE_FRONT_HYPERVOLUME = 1.1 * 11.0 - 1.0 / 3.0
# name -> (tuner algorithm or None, Optuna sampler factory or None)
RUNS = ("nsga2", "tpe", "random")


def zdt1(x: Sequence[float]) -> tuple[float, float]:
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    f1 = float(x[0])
    return f1, g * (1.0 - (f1 / g) ** 0.5)


def hypervolume(points: Sequence[tuple[float, float]], reference: tuple[float, float]) -> float:
    """Area dominated by ``points`` (both minimised) and bounded by ``reference``."""
    inside = sorted(p for p in points if p[0] < reference[0] and p[1] < reference[1])
    area, best_f2 = 0.0, reference[1]
    for f1, f2 in inside:  # by f1 ascending: each point adds the strip below the best f2 so far
        if f2 < best_f2:
            area += (reference[0] - f1) * (best_f2 - f2)
            best_f2 = f2
    return area


def settings_for(algorithm: str, seed: int, population: int) -> dict[str, str]:
    if algorithm == "nsga2":
        return {"population_size": str(population), "random_state": str(seed)}
    return {"random_state": str(seed)}


def sampler_for(algorithm: str, seed: int, population: int) -> optuna.samplers.BaseSampler:
    if algorithm == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    if algorithm == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def through_tuner(
    stub: api_pb2_grpc.SuggestionStub,
    algorithm: str,
    seed: int,
    trials: int,
    dims: int,
    population: int,
) -> list[tuple[float, float]]:
    names = [f"x{i}" for i in range(dims)]
    settings = settings_for(algorithm, seed, population)
    settings[OBJECTIVES_SETTING] = format_objectives([("f2", Direction.MINIMIZE)])
    exp = _benchkit.experiment(
        f"zdt1-{algorithm}-{seed}",
        algorithm,
        [(n, 0.0, 1.0) for n in names],
        settings=settings,
    )
    exp.spec.objective.objective_metric_name = "f1"
    sent: list[api_pb2.Trial] = []
    points: list[tuple[float, float]] = []
    for i in range(trials):
        reply = stub.GetSuggestions(_benchkit.request(exp, sent, 1), timeout=600)
        (assignment,) = _benchkit.assignments(reply)
        point = zdt1([float(assignment[n]) for n in names])
        points.append(point)
        trial = _benchkit.trial(f"t{i}", assignment, i, point[0])
        trial.status.observation.metrics[0].name = "f1"
        trial.status.observation.metrics.add(name="f2", value=repr(point[1]))
        sent.append(trial)
    return points


def directly(
    algorithm: str, seed: int, trials: int, dims: int, population: int
) -> list[tuple[float, float]]:
    study = optuna.create_study(
        directions=["minimize", "minimize"], sampler=sampler_for(algorithm, seed, population)
    )

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        return zdt1([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(dims)])

    study.optimize(objective, n_trials=trials)
    return [(t.values[0], t.values[1]) for t in study.trials]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--dims", type=int, default=10)
    parser.add_argument("--population", type=int, default=20, help="nsga2 population_size")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    budget = max(args.trials)
    server, port = create_server("127.0.0.1:0")
    # name -> seed -> the points of its run, in trial order
    runs: dict[str, list[list[tuple[float, float]]]] = {}
    seconds: dict[str, float] = {}
    drivers: list[tuple[str, Callable[[int], list[tuple[float, float]]]]] = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = api_pb2_grpc.SuggestionStub(channel)
            for algorithm in RUNS:

                def ours(seed: int, a: str = algorithm) -> list[tuple[float, float]]:
                    return through_tuner(stub, a, seed, budget, args.dims, args.population)

                def theirs(seed: int, a: str = algorithm) -> list[tuple[float, float]]:
                    return directly(a, seed, budget, args.dims, args.population)

                drivers.append((f"tuner {algorithm}", ours))
                if algorithm != "random":
                    drivers.append((f"optuna {algorithm}", theirs))
            for name, driver in drivers:
                started = time.perf_counter()
                runs[name] = [driver(seed) for seed in range(args.seeds)]
                seconds[name] = time.perf_counter() - started
                print(f"{name}: {seconds[name]:.1f} s", file=sys.stderr)
    finally:
        server.stop(None)

    def median_hv(name: str, n: int) -> float:
        return statistics.median(hypervolume(points[:n], REFERENCE) for points in runs[name])

    header = ["run", *(f"HV @ {n}" for n in args.trials), "seconds (all seeds)"]
    rows = [
        [name, *(f"{median_hv(name, n):.3f}" for n in args.trials), f"{seconds[name]:.1f}"]
        for name, _ in drivers
    ]
    ratios = [
        [
            f"tuner {a} / optuna {a}",
            *(
                f"{median_hv(f'tuner {a}', n) / median_hv(f'optuna {a}', n):.3f}"
                for n in args.trials
            ),
            f"{seconds[f'tuner {a}'] / seconds[f'optuna {a}']:.2f}",
        ]
        for a in RUNS
        if a != "random"
    ]
    argv_list = list(argv if argv is not None else sys.argv[1:])
    text = "\n".join(
        [
            f"## {HEADING}",
            "",
            f"Measured {_benchkit.today()} with `"
            + _benchkit.command_line("bench_multiobjective.py", argv_list)
            + "`.",
            f"ZDT1 with {args.dims} variables, median over {args.seeds} seeds of the"
            f" hypervolume (reference point {REFERENCE}; the true front's is"
            f" {TRUE_FRONT_HYPERVOLUME:.3f}) of all trials after N trials, sequential (one"
            f" point per call). nsga2 with population_size {args.population}; tpe with"
            " Katib's defaults (n_startup_trials 10, n_ei_candidates 24), Optuna's"
            " TPESampler defaults are the same. Higher is better. tuner's seconds include a"
            " gRPC round trip per trial carrying every trial so far; nsga2 also rebuilds its"
            " study from each request (so a restarted server answers alike), O(trials) per"
            " call.",
            "",
            _benchkit.table(header, rows + ratios, numeric_from=1),
            "",
            _benchkit.machine_notes(),
        ]
    )
    print(text)
    if not args.no_write:
        _benchkit.write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
