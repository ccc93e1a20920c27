"""Sample efficiency: median simple regret after 20/50/100 trials on Branin, Hartmann6 and
Rosenbrock-4D over 10 seeds, our algorithms over gRPC beside plain random search and
Optuna's TPESampler driven directly.

Our algorithms run through a real gRPC server in each worker process, sequentially: each
GetSuggestions call carries every trial so far (all completed) and asks for ``--batch``
points (default 1), which are evaluated before the next call, as a controller with
``parallelTrialCount: 1`` would. Settings are Katib's defaults with ``random_state`` = the
seed. The baselines are uniform draws with numpy (``numpy-random``) and ``study.optimize``
with ``TPESampler(seed=seed)`` (``optuna-tpe``; ``optuna-mvtpe`` with ``multivariate=True``).
Grid search is left out: its first 100 points of any grid fine enough to be fair vary only
the last parameters.

    python benchmarks/bench_sample_efficiency.py             # full run, writes RESULTS.md
    python benchmarks/bench_sample_efficiency.py --seeds 2 --trials 10 20 --no-write
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import _benchkit  # a sibling: a script's own folder is first on sys.path
import grpc
import numpy as np
from _functions import FUNCTIONS, TestFunction

from suggestion.service import create_server
from tuner.protos import api_pb2, api_pb2_grpc

HEADING = "Sample efficiency"
OURS = ("random", "sobol", "tpe", "multivariate-tpe", "bayesianoptimization", "cmaes")
BASELINES = ("numpy-random", "optuna-tpe", "optuna-mvtpe")
ALGORITHMS = OURS + BASELINES
# Longest first, so the slow runs do not end up alone at the end of the pool's queue.
_COST = {"bayesianoptimization": 0, "multivariate-tpe": 1, "tpe": 1, "optuna-mvtpe": 2}


@dataclass(frozen=True)
class Task:
    function: str
    algorithm: str
    seed: int
    trials: int
    batch: int


@dataclass(frozen=True)
class Outcome:
    task: Task
    values: list[float]
    seconds: float


# One server per worker process, started by `_start_worker` (the pool's initializer) and
# living as long as the process; inline runs stop it with `_stop_worker`.
_worker: tuple[grpc.Server, grpc.Channel, api_pb2_grpc.SuggestionStub] | None = None


def _start_worker() -> None:
    global _worker
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    server, port = create_server("127.0.0.1:0")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    _worker = (server, channel, api_pb2_grpc.SuggestionStub(channel))


def _stop_worker() -> None:
    global _worker
    if _worker is not None:
        server, channel, _ = _worker
        channel.close()
        server.stop(None)
        _worker = None


def run_task(task: Task) -> Outcome:
    f = FUNCTIONS[task.function]
    start = time.perf_counter()
    if task.algorithm == "numpy-random":
        values = _numpy_random(f, task)
    elif task.algorithm.startswith("optuna-"):
        values = _optuna_tpe(f, task, multivariate=task.algorithm == "optuna-mvtpe")
    else:
        assert _worker is not None, "worker not started"
        values = _over_grpc(_worker[2], f, task)
    return Outcome(task, values, time.perf_counter() - start)


def _over_grpc(stub: api_pb2_grpc.SuggestionStub, f: TestFunction, task: Task) -> list[float]:
    exp = _benchkit.experiment(
        f"{task.function}-{task.algorithm}-{task.seed}",
        task.algorithm,
        f.bounds,
        settings={"random_state": str(task.seed)},
    )
    trials: list[api_pb2.Trial] = []
    values: list[float] = []
    while len(values) < task.trials:
        count = min(task.batch, task.trials - len(values))
        reply = stub.GetSuggestions(_benchkit.request(exp, trials, count))
        new = _benchkit.assignments(reply)
        if len(new) != count:
            raise RuntimeError(f"{task}: asked for {count} points, got {len(new)}")
        for assignment in new:
            value = f([float(assignment[name]) for name in f.names])
            trials.append(_benchkit.trial(f"t{len(trials)}", assignment, len(trials), value))
            values.append(value)
    return values


def _numpy_random(f: TestFunction, task: Task) -> list[float]:
    rng = np.random.default_rng(task.seed)
    lo = np.array([b[1] for b in f.bounds])
    hi = np.array([b[2] for b in f.bounds])
    return [f(lo + rng.random(len(lo)) * (hi - lo)) for _ in range(task.trials)]


def _optuna_tpe(f: TestFunction, task: Task, *, multivariate: bool) -> list[float]:
    import optuna

    def objective(trial: optuna.Trial) -> float:
        return f([trial.suggest_float(name, lo, hi) for name, lo, hi in f.bounds])

    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=task.seed, multivariate=multivariate)
    )
    study.optimize(objective, n_trials=task.trials)
    return [t.value for t in study.trials if t.value is not None]


def run_all(tasks: Sequence[Task], workers: int) -> list[Outcome]:
    ordered = sorted(tasks, key=lambda t: _COST.get(t.algorithm, 3))
    if workers <= 1:
        _start_worker()
        try:
            return [_log(run_task(t)) for t in ordered]
        finally:
            _stop_worker()
    # spawn, not fork: gRPC's threads do not survive a fork.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker) as pool:
        futures = [pool.submit(run_task, t) for t in ordered]
        return [_log(future.result()) for future in as_completed(futures)]


def _log(outcome: Outcome) -> Outcome:
    t = outcome.task
    print(
        f"# {t.function} {t.algorithm} seed {t.seed}: best {min(outcome.values):.4g}"
        f" in {outcome.seconds:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    return outcome


@dataclass(frozen=True)
class Summary:
    regret: dict[int, float]
    """Checkpoint -> median simple regret over the seeds."""
    seconds: float
    """Median wall seconds of one run."""


def summarise(
    outcomes: Sequence[Outcome], checkpoints: Sequence[int]
) -> dict[tuple[str, str], Summary]:
    """(function, algorithm) -> medians over the seeds."""
    grouped: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        grouped.setdefault((o.task.function, o.task.algorithm), []).append(o)
    return {
        key: Summary(
            {
                c: statistics.median(FUNCTIONS[key[0]].regret(min(o.values[:c])) for o in runs)
                for c in checkpoints
            },
            statistics.median(o.seconds for o in runs),
        )
        for key, runs in grouped.items()
    }


def _ratio(a: float, b: float) -> str:
    if b == 0:
        return "-" if a == 0 else "inf"
    return f"{a / b:.2g}"


def report(
    medians: dict[tuple[str, str], Summary],
    functions: Sequence[str],
    algorithms: Sequence[str],
    checkpoints: Sequence[int],
) -> tuple[str, str]:
    """(regret table, ratio table) as Markdown."""
    header = ["function", "algorithm", *(f"regret@{c}" for c in checkpoints), "s/run"]
    rows = [
        [
            fn,
            alg,
            *(f"{medians[fn, alg].regret[c]:.3g}" for c in checkpoints),
            f"{medians[fn, alg].seconds:.1f}",
        ]
        for fn in functions
        for alg in algorithms
    ]
    last = checkpoints[-1]
    references = [r for r in ("numpy-random", "optuna-tpe") if r in algorithms]
    ratio_header = ["algorithm"] + [f"{fn} ÷ {r}" for fn in functions for r in references]
    ratio_rows = [
        [alg]
        + [
            _ratio(medians[fn, alg].regret[last], medians[fn, r].regret[last])
            for fn in functions
            for r in references
        ]
        for alg in algorithms
        if alg not in references
    ]
    ratios = _benchkit.table(ratio_header, ratio_rows, numeric_from=1) if references else ""
    return _benchkit.table(header, rows, numeric_from=2), ratios


def reading(
    medians: dict[tuple[str, str], Summary],
    functions: Sequence[str],
    algorithms: Sequence[str],
    last: int,
) -> list[str]:
    """Computed remarks at the last checkpoint: the best, who trails Optuna, the noise."""
    lines = []
    for fn in functions:
        regret = {alg: medians[fn, alg].regret[last] for alg in algorithms}
        best = min(regret, key=regret.__getitem__)
        line = f"- {fn} @ {last}: lowest median regret {best} ({regret[best]:.3g})"
        if "optuna-tpe" in regret:
            worse = [a for a in algorithms if a in OURS and regret[a] > regret["optuna-tpe"]]
            line += "; worse than optuna-tpe: " + (", ".join(worse) or "none")
        lines.append(line + ".")
    if {"random", "numpy-random"} <= set(algorithms):
        pairs = [(fn, medians[fn, "random"], medians[fn, "numpy-random"]) for fn in functions]
        spread = ", ".join(f"{fn} {_ratio(a.regret[last], b.regret[last])}" for fn, a, b in pairs)
        lines.append(
            f"- Seed noise: `random` (ours) and `numpy-random` are the same method; the ratio of"
            f" their medians ({spread}) shows how far two equivalent methods land with these"
            " seeds: differences of that size are within the noise."
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1")
    parser.add_argument("--trials", nargs="+", type=int, default=[20, 50, 100], help="checkpoints")
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=list(FUNCTIONS))
    parser.add_argument("--batch", type=int, default=1, help="suggestions per call (ours)")
    parser.add_argument("--workers", type=int, default=2, help="processes; 1 runs inline")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    checkpoints = sorted(set(args.trials))

    tasks = [
        Task(fn, alg, seed, checkpoints[-1], args.batch)
        for fn in args.functions
        for alg in args.algorithms
        for seed in range(args.seeds)
    ]
    start = time.perf_counter()
    outcomes = run_all(tasks, args.workers)
    wall = time.perf_counter() - start
    medians = summarise(outcomes, checkpoints)
    regret_table, ratio_table = report(medians, args.functions, args.algorithms, checkpoints)

    command = _benchkit.command_line(
        "bench_sample_efficiency.py", sys.argv[1:] if argv is None else argv
    )
    optima = ", ".join(f"{f.name} {f.optimum:.6g}" for f in map(FUNCTIONS.get, args.functions) if f)
    text = "\n".join(
        [
            f"## {HEADING}",
            "",
            f"Run {_benchkit.today()}: `{command}` ({wall / 60:.0f} min wall,"
            f" {args.workers} worker processes)",
            "",
            f"Median over {args.seeds} seeds (0..{args.seeds - 1}) of the simple regret (best"
            " value found so far minus the known minimum) after the given number of trials."
            f" Known minima: {optima}. Domains: Branin [-5, 10] x [0, 15], Hartmann6"
            " [0, 1]^6, Rosenbrock [-5, 10]^4. Our algorithms (`random` ... `cmaes`) run over"
            " gRPC against an in-process server, sequentially with"
            f" {args.batch} suggestion{'s' if args.batch > 1 else ''} per call, each call"
            " carrying every trial so far; Katib's default settings, `random_state` = seed."
            " `numpy-random`: uniform draws from `numpy.random.default_rng(seed)`."
            " `optuna-tpe` / `optuna-mvtpe`: Optuna's `TPESampler(seed=seed)` (default"
            " settings, `multivariate=True` for mvtpe) driven by `study.optimize`."
            " s/run: median wall seconds of one run (a worker busy with one run at a time).",
            "",
            regret_table,
            "",
            f"Ratio of median regrets at {checkpoints[-1]} trials (below 1: ours is better):",
            "",
            ratio_table,
            "",
            "Machine: " + _benchkit.machine_notes(),
            "",
            "Reading (computed):",
            "",
            *reading(medians, args.functions, args.algorithms, checkpoints[-1]),
            "",
        ]
    )
    print(text)
    if not args.no_write:
        _benchkit.write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
