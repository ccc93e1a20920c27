"""Multi-fidelity: median simple regret for the same budget of training epochs, with tuner's
controller stopping trials early (medianstop, asha) or running hyperband, beside Optuna's
SuccessiveHalvingPruner and HyperbandPruner driven directly.

Each trial prints a learning curve of a test function (`_curve_trial.py`: the true value
plus an offset and noise that shrink with the epochs) for up to ``--epochs`` epochs. tuner's
methods run real experiments through the Python API (local executor, one trial at a time,
in-process suggestion server over gRPC, a SQLite file); Optuna's run ``study.optimize`` on
the same curves with ``RandomSampler(seed)``. Every method samples with random search and
stops once it has used ``--budget`` epochs (counted in trial order from the reports
actually made, a stopped trial's overshoot included); tuner's runs are cut there after the
fact. The result of a run is the trial with the best final value among those that trained
all epochs; its regret is the true (noise-free) value there minus the optimum.

asha runs with ``min_resource`` 1, ``reduction_factor`` 3 and ``max_resource`` = epochs
(rungs at steps 1, 3, ...: the 2nd, 4th... epoch, since stdout numbers reports from 0),
and Optuna's pruners with the same numbers; medianstop with Katib's defaults. hyperband is
skipped, with a note, when the server does not know it.

    python benchmarks/bench_multifidelity.py                 # full run, writes RESULTS.md
    python benchmarks/bench_multifidelity.py --seeds 1 --budget 45 --no-write
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import _benchkit  # a sibling: a script's own folder is first on sys.path
from _curve_trial import curve
from _functions import FUNCTIONS, TestFunction

HEADING = "Multi-fidelity: early stopping and hyperband"
TRIAL = Path(__file__).resolve().parent / "_curve_trial.py"
METHODS = (
    "random",
    "random+medianstop",
    "random+asha",
    "hyperband",
    "optuna-successive-halving",
    "optuna-hyperband",
)
REDUCTION_FACTOR = 3


@dataclass(frozen=True)
class Outcome:
    regret: float
    trials: int
    epochs: int
    seconds: float


@dataclass(frozen=True)
class Trained:
    """One trial as the budget sees it: its point, how many epochs it reported, its last
    reported value, in the order the trials were created."""

    x: list[float]
    epochs: int
    last: float


def outcome(f: TestFunction, trained: Sequence[Trained], budget: int, full: int) -> Outcome:
    used, kept, best = 0, 0, None
    for t in trained:
        if used + t.epochs > budget:
            break
        used += t.epochs
        kept += 1
        if t.epochs >= full and (best is None or t.last < best.last):
            best = t
    regret = float("nan") if best is None else f.regret(f(best.x))
    return Outcome(regret, kept, used, 0.0)


# -- tuner's controller ---------------------------------------------------------------------


def run_tuner(method: str, f: TestFunction, seed: int, args: argparse.Namespace) -> Outcome:
    from tuner import Double, Experiment, Int
    from tuner.store import Store

    full = args.epochs
    max_trials = args.budget // full if method == "random" else 3 * args.budget // full
    parameters: dict[str, object] = {n: Double(lo, hi) for n, lo, hi in f.bounds}
    epochs_arg = str(full)
    algorithm, settings = "random", {"random_state": seed}
    early_stopping, early_settings = None, None
    parallel = 1
    if method == "random+medianstop":
        early_stopping = "medianstop"
    elif method == "random+asha":
        early_stopping = "asha"
        early_settings = {
            "min_resource": 1,
            "reduction_factor": REDUCTION_FACTOR,
            "max_resource": full,
        }
    elif method == "hyperband":
        parameters["epochs"] = Int(1, full)
        epochs_arg = "{epochs}"
        algorithm = "hyperband"
        settings = {"resource_name": "epochs", "eta": REDUCTION_FACTOR, "r_l": full}
        # Katib's rule: parallelTrialCount holds the largest bracket, eta ** s_max.
        parallel = REDUCTION_FACTOR ** int(math.log(full) / math.log(REDUCTION_FACTOR))
    command = ["python", str(TRIAL), f.name, str(seed), epochs_arg, str(args.pause)]
    command += [f"{{{n}}}" for n in f.names]
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/bench.db"
        started = time.perf_counter()
        Experiment(
            "bench",
            parameters=parameters,  # type: ignore[arg-type]
            objective="loss",
            goal_type="minimize",
            algorithm=algorithm,
            algorithm_settings=settings,
            early_stopping=early_stopping,
            early_stopping_settings=early_settings,
            max_trials=max_trials,
            parallel_trials=parallel,
            command=command,
        ).run(db=db, progress=False, run_dir=f"{tmp}/runs", working_dir=tmp, poll_interval=0.05)
        seconds = time.perf_counter() - started
        with Store.open(db) as store:
            trained = []
            for t in sorted(store.list_trials("bench"), key=lambda t: t.created_at):
                values = [o.value for o in store.get_observations(t.name, "loss")]
                if values:
                    x = [float(t.parameters[n]) for n in f.names]
                    trained.append(Trained(x, len(values), values[-1]))
    result = outcome(f, trained, args.budget, full)
    return Outcome(result.regret, result.trials, result.epochs, seconds)


def server_knows(algorithm: str) -> bool:
    import suggestion.algorithms

    return algorithm in suggestion.algorithms.names()


# -- Optuna directly ------------------------------------------------------------------------


def run_optuna(method: str, f: TestFunction, seed: int, args: argparse.Namespace) -> Outcome:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    full = args.epochs
    pruner: optuna.pruners.BasePruner
    if method == "optuna-successive-halving":
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=1, reduction_factor=REDUCTION_FACTOR
        )
    else:
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=full, reduction_factor=REDUCTION_FACTOR
        )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed), pruner=pruner)
    trained: list[Trained] = []
    used = 0

    def objective(trial: optuna.Trial) -> float:
        nonlocal used
        x = [trial.suggest_float(n, lo, hi) for n, lo, hi in f.bounds]
        values = curve(f.name, seed, x, full)
        reported = 0
        for step, value in enumerate(values):
            trial.report(value, step)
            reported += 1
            if step + 1 < full and trial.should_prune():
                break
        used += reported
        trained.append(Trained(x, reported, values[reported - 1]))
        if reported < full:
            raise optuna.TrialPruned()
        return values[-1]

    def stop_at_budget(study: optuna.Study, _: object) -> None:
        if used >= args.budget:
            study.stop()

    started = time.perf_counter()
    study.optimize(objective, n_trials=10 * args.budget, callbacks=[stop_at_budget])
    result = outcome(f, trained, args.budget, full)
    return Outcome(result.regret, result.trials, result.epochs, time.perf_counter() - started)


# -- the table ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", nargs="+", default=["branin"], choices=sorted(FUNCTIONS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=9, help="epochs of a full training")
    parser.add_argument("--budget", type=int, default=108, help="epochs per run, all trials")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds per epoch")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md")
    args = parser.parse_args(argv)

    notes = []
    methods = list(args.methods)
    if "hyperband" in methods and not server_knows("hyperband"):
        methods.remove("hyperband")
        notes.append("hyperband: skipped, the suggestion server does not know it (yet).")
        print(f"note: {notes[-1]}", file=sys.stderr)
    rows = []
    for name in args.functions:
        f = FUNCTIONS[name]
        for method in methods:
            runner: Callable[..., Outcome] = (
                run_optuna if method.startswith("optuna") else run_tuner
            )
            results = []
            for seed in range(args.seeds):
                try:
                    results.append(runner(method, f, seed, args))
                except Exception as e:  # noqa: BLE001 - one method's failure is a note, not the end
                    notes.append(f"{method} on {name}, seed {seed}: {type(e).__name__}: {e}")
                    print(f"note: {notes[-1]}", file=sys.stderr)
                    break
                print(f"{name} {method} seed {seed}: {results[-1]}", file=sys.stderr)
            if not results:
                continue
            rows.append(
                [
                    name,
                    method,
                    f"{statistics.median(r.regret for r in results):.3g}",
                    f"{statistics.median(r.trials for r in results):g}",
                    f"{statistics.median(r.epochs for r in results):g}",
                    f"{statistics.median(r.seconds for r in results):.1f}",
                ]
            )
    header = ["function", "method", "median regret", "trials", "epochs used", "seconds"]
    table = _benchkit.table(header, rows, numeric_from=2)
    command = _benchkit.command_line("bench_multifidelity.py", list(argv or sys.argv[1:]))
    text = "\n\n".join(
        [
            f"## {HEADING}",
            f"`{command}` ({_benchkit.today()}): {args.seeds} seeds, {args.epochs} epochs per"
            f" full training, a budget of {args.budget} epochs per run"
            f" ({args.budget // args.epochs} full trainings), {args.pause} s per epoch. Regret:"
            " true value of the best fully trained trial minus the optimum (lower is better),"
            " median over seeds; trials and epochs used within the budget, seconds of wall"
            " time per run (medians).",
            table,
            *[f"- {note}" for note in notes],
            _benchkit.machine_notes(),
        ]
    )
    print(text)
    if not args.no_write:
        _benchkit.write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
