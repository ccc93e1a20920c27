"""Orchestration overhead: N no-op trials, random search, 4 in parallel, tuner vs Optuna.

The trial is a command that prints one metric and exits. tuner runs it through `tuner run`
(SQLite store, in-process suggestion server over gRPC, local executor with a supervisor
process per trial); Optuna runs the same command with ``subprocess.run`` inside
``study.optimize(n_jobs=4)`` with SQLite RDB storage. Both are measured end to end, in one
run of this script, and compared with the time the command alone needs (run sequentially):
overhead per trial = (wall time x parallelism - trials x command time) / trials.

    python benchmarks/bench_orchestration.py            # 500 trials, writes RESULTS.md
    python benchmarks/bench_orchestration.py --trials 40 --no-write
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PARALLEL = 4
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## Orchestration overhead"
NOOP = "import sys; print('loss=' + sys.argv[1])"


def noop_argv(value: str) -> list[str]:
    return [sys.executable, "-c", NOOP, value]


def command_seconds(samples: int = 20) -> float:
    """Median wall time of the no-op command alone."""
    times = []
    for i in range(samples):
        start = time.perf_counter()
        subprocess.run(noop_argv(str(i)), check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def experiment(trials: int) -> dict:
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "bench-orchestration"},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {
                "algorithmName": "random",
                "algorithmSettings": [{"name": "random_state", "value": "1"}],
            },
            "parallelTrialCount": PARALLEL,
            "maxTrialCount": trials,
            "parameters": [
                {
                    "name": "x",
                    "parameterType": "double",
                    "feasibleSpace": {"min": "-10", "max": "10"},
                }
            ],
            "trialTemplate": {
                "primaryContainerName": "main",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {
                                        "name": "main",
                                        "image": "python:3.11",
                                        "command": ["python3", "-c", NOOP, "${trialParameters.x}"],
                                    }
                                ],
                            }
                        }
                    },
                },
            },
        },
    }


def run_tuner(trials: int, work: Path, poll_interval: float) -> float:
    path = work / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment(trials), sort_keys=False))
    tuner = Path(sys.executable).with_name("tuner")
    start = time.perf_counter()
    subprocess.run(
        [
            str(tuner),
            "run",
            str(path),
            "--db",
            f"sqlite:///{work / 'tuner.db'}",
            "--run-dir",
            str(work / "runs"),
            "--no-progress",
            "--poll-interval",
            str(poll_interval),
        ],
        check=True,
        cwd=work,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def run_optuna(trials: int, work: Path) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -10, 10)
        out = subprocess.run(noop_argv(repr(x)), check=True, capture_output=True, text=True)
        match = re.search(r"loss=(\S+)", out.stdout)
        assert match is not None
        return float(match.group(1))

    start = time.perf_counter()
    study = optuna.create_study(
        storage=f"sqlite:///{work / 'optuna.db'}",
        sampler=optuna.samplers.RandomSampler(seed=1),
    )
    study.optimize(objective, n_trials=trials, n_jobs=PARALLEL)
    return time.perf_counter() - start


def row(name: str, trials: int, wall: float, alone: float) -> str:
    per_trial = (wall * PARALLEL - trials * alone) / trials
    return f"| {name} | {trials} | {wall:.1f} | {trials / wall:.1f} | {per_trial * 1000:.0f} |"


def write_section(text: str) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md, leaving the others."""
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    start = old.find(SECTION)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        following = re.search(r"^## ", old[start + len(SECTION) :], re.MULTILINE)
        end = len(old) if following is None else start + len(SECTION) + following.start()
        new = old[:start] + text + ("\n" + old[end:] if end < len(old) else "")
    RESULTS.write_text(new.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="tuner's --poll-interval (its default: 0.5)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    alone = command_seconds()
    with tempfile.TemporaryDirectory(prefix="bench-orch-") as tmp:
        work = Path(tmp)
        (work / "tuner").mkdir()
        (work / "optuna").mkdir()
        tuner_wall = run_tuner(args.trials, work / "tuner", args.poll_interval)
        optuna_wall = run_optuna(args.trials, work / "optuna")

    import optuna

    command = "python benchmarks/bench_orchestration.py" + (
        f" --trials {args.trials}" if args.trials != 500 else ""
    )
    lines = [
        SECTION,
        "",
        f"{args.trials} no-op trials (a Python command printing one metric), random search, "
        f"{PARALLEL} in parallel, SQLite storage for both; wall time end to end (tuner: the "
        "`tuner run` process including its start-up and in-process gRPC suggestion server; "
        "Optuna: `create_study` + `study.optimize(n_jobs=4)` running the command with "
        "`subprocess.run`). Overhead per trial = (wall x 4 - trials x command time) / trials; "
        f"the command alone takes {alone * 1000:.0f} ms.",
        "",
        "| runner | trials | wall s | trials/s | overhead per trial ms |",
        "|---|---:|---:|---:|---:|",
        row(f"tuner run (--poll-interval {args.poll_interval:g})", args.trials, tuner_wall, alone),
        row(f"Optuna {optuna.__version__} study.optimize", args.trials, optuna_wall, alone),
        "",
        "Per trial, tuner starts a supervisor process besides the command (what lets a "
        "trial survive and be re-adopted after a controller crash), stores the trial row "
        "before launching it, its running state, its observations and its end in separate "
        "transactions, and asks the suggestion server over gRPC once per batch of free "
        "slots; Optuna keeps the trial in-process. With 4 parallel trials on fewer than 4 "
        "CPUs both runners are CPU-bound, so the overhead column includes waiting for a CPU.",
        "",
        f"Machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}. Command: `{command}`",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
