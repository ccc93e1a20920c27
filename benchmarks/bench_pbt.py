"""pbt against random search on the toy learning-rate problem of examples/pbt_train.py, for
the same compute: every trial trains 20 epochs; a pbt child starts from its parent's
checkpoint, a random trial from scratch. Driven over gRPC against an in-process suggestion
server, 4 trials at a time (ask 4, train them, report them), each request carrying every
trial with the labels the server gave it, as tuner's controller sends them.

    python benchmarks/bench_pbt.py            # writes the "Population based training"
                                              # section of benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import _benchkit  # a sibling: a script's own folder is first on sys.path
import grpc

from suggestion.service import create_server
from tuner.protos import api_pb2, api_pb2_grpc

HEADING = "Population based training"
EPOCHS = 20
PARALLEL = 4
PARENT = "pbt.suggestion.katib.kubeflow.org/parent"
GENERATION = "pbt.suggestion.katib.kubeflow.org/generation"
PBT = {"suggestion_trial_dir": "/ckpt", "n_population": "8", "truncation_threshold": "0.2"}
VARIANTS: dict[str, tuple[str, Mapping[str, str]]] = {
    "random (from scratch)": ("random", {}),
    "pbt, perturb": ("pbt", PBT),
    "pbt, resample_probability 0.25": ("pbt", {**PBT, "resample_probability": "0.25"}),
}


def _toy() -> object:
    path = Path(__file__).resolve().parents[1] / "examples" / "pbt_train.py"
    spec = importlib.util.spec_from_file_location("pbt_train", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def experiment(name: str, algorithm: str, settings: Mapping[str, str]) -> api_pb2.Experiment:
    exp = _benchkit.experiment(name, algorithm, [("lr", 0.0001, 0.02)], settings=settings)
    exp.spec.objective.type = api_pb2.MAXIMIZE
    exp.spec.objective.objective_metric_name = "accuracy"
    return exp


def run_one(
    stub: api_pb2_grpc.SuggestionStub, toy: object, variant: str, seed: int, trials: int
) -> tuple[float, int]:
    """Best accuracy after ``trials`` trials, and the epochs behind the best trial."""
    algorithm, settings = VARIANTS[variant]
    exp = experiment(f"{variant}-{seed}", algorithm, {**settings, "random_state": str(seed)})
    done: list[api_pb2.Trial] = []
    states: dict[str, dict[str, float]] = {}
    rng = random.Random(seed)
    while len(done) < trials:
        reply = stub.GetSuggestions(_benchkit.request(exp, done, min(PARALLEL, trials - len(done))))
        batch: list[api_pb2.Trial] = []
        for proposal in reply.parameter_assignments:
            name = f"t{len(done) + len(batch)}"
            lr = float(next(a.value for a in proposal.assignments if a.name == "lr"))
            parent = proposal.labels.get(PARENT)
            state = dict(states[parent]) if parent else {"epoch": 0, "accuracy": 0.0}
            for _ in range(EPOCHS):
                state["accuracy"] = toy.step(state["accuracy"], lr, rng)  # type: ignore[attr-defined]
                state["epoch"] += 1
            states[name] = state
            trial = _benchkit.trial(name, {"lr": repr(lr)}, len(done) + len(batch), 0.0)
            trial.status.observation.metrics[0].name = "accuracy"
            trial.status.observation.metrics[0].value = repr(state["accuracy"] / 100)
            trial.spec.labels.update(proposal.labels)
            batch.append(trial)
        done.extend(batch)
    best = max(states, key=lambda n: states[n]["accuracy"])
    return states[best]["accuracy"] / 100, int(states[best]["epoch"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--no-write", action="store_true", help="print, do not edit RESULTS.md")
    args = parser.parse_args(argv)
    command = _benchkit.command_line("bench_pbt.py", sys.argv[1:] if argv is None else argv)
    toy = _toy()
    server, port = create_server("127.0.0.1:0")
    rows = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = api_pb2_grpc.SuggestionStub(channel)
            results = {}
            for variant in VARIANTS:
                started = time.perf_counter()
                outcomes = [run_one(stub, toy, variant, s, args.trials) for s in range(args.seeds)]
                per_run = (time.perf_counter() - started) / args.seeds
                results[variant] = outcomes
                rows.append(
                    [
                        variant,
                        f"{statistics.median(o[0] for o in outcomes):.3f}",
                        f"{min(o[0] for o in outcomes):.3f}",
                        f"{statistics.median(o[1] for o in outcomes):.0f}",
                        f"{per_run:.2f}",
                    ]
                )
    finally:
        server.stop(None)
    base = statistics.median(o[0] for o in results["random (from scratch)"])
    for row, variant in zip(rows, VARIANTS, strict=True):
        row.insert(2, f"{statistics.median(o[0] for o in results[variant]) / base:.1f}x")
    text = "\n".join(
        [
            f"## {HEADING}",
            "",
            f"Run {_benchkit.today()}: `{command}`",
            "",
            f"The toy problem of `examples/pbt_train.py` (Katib's simple-pbt trial: accuracy"
            " grows fastest when the learning rate follows a triangle over the accuracy), lr in"
            f" [0.0001, 0.02]. {args.trials} trials of {EPOCHS} epochs each, {PARALLEL} at a"
            " time, for every variant: the same compute. A pbt child continues from its"
            " parent's checkpoint, a random trial starts from scratch. pbt: `n_population` 8,"
            " `truncation_threshold` 0.2. Over gRPC to an in-process server; the trials run"
            f" in-process. Median (and worst) over {args.seeds} seeds of the best final"
            " accuracy; epochs: how long the best trial's lineage trained.",
            "",
            _benchkit.table(
                ["variant", "best accuracy", "vs random", "worst seed", "epochs", "s/run"],
                rows,
                1,
            ),
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
