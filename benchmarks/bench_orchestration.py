"""Orchestration overhead: N quick trials, random search, tuner vs Optuna.

The trial is a command that prints one metric and exits: ``/bin/echo loss=1`` and a Python
no-op. tuner runs it through `tuner run` (SQLite store, in-process suggestion server over
gRPC, local executor with a supervisor process per trial); Optuna runs the same command with
``subprocess.run`` inside ``study.optimize(n_jobs=P)`` with SQLite RDB storage. Both are
measured end to end, in one run of this script, at parallelism 1 and 4, and compared with
the time the command alone needs (run sequentially):
overhead per trial = (wall time x parallelism - trials x command time) / trials.

    python benchmarks/bench_orchestration.py            # 300 trials, writes RESULTS.md
    python benchmarks/bench_orchestration.py --trials 40 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _benchkit  # a sibling: a script's own folder is first on sys.path
import yaml

HEADING = "Orchestration overhead"
SECTION = f"## {HEADING}"
NOOP = "import sys; print('loss=' + sys.argv[1])"
# Each command as the trial template gives it (``${trialParameters.x}`` substituted) and as
# Optuna runs it (``{x}``); both print ``loss=...``.
COMMANDS: dict[str, list[str]] = {
    "echo": ["/bin/echo", "loss=1", "x={x}"],
    "python": ["python3", "-c", NOOP, "{x}"],
}


def argv(kind: str, value: str) -> list[str]:
    command = [a.replace("{x}", value) for a in COMMANDS[kind]]
    if command[0] == "python3":
        command[0] = sys.executable  # as tuner's local executor maps it
    return command


def command_seconds(kind: str, samples: int = 20) -> tuple[float, float]:
    """Median wall time of the command alone, and its mean CPU time."""
    times = []
    cpu = children_cpu()
    for i in range(samples):
        start = time.perf_counter()
        subprocess.run(argv(kind, str(i)), check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), (children_cpu() - cpu) / samples


def children_cpu() -> float:
    """CPU seconds (user + system) of the descendants this process has reaped."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def become_subreaper() -> None:
    """Orphaned descendants (tuner's fork server, outliving `tuner run` by a moment) become
    our children, so that their CPU time is counted once reaped."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def reap_orphans() -> None:
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def experiment(trials: int, kind: str, parallel: int) -> dict:
    return _benchkit.job_experiment(
        "bench-orchestration",
        [a.replace("{x}", "${trialParameters.x}") for a in COMMANDS[kind]],
        trials=trials,
        parallel=parallel,
        parameter=("double", "-10", "10"),
        settings={"random_state": "1"},
    )


def run_tuner(
    trials: int, kind: str, parallel: int, work: Path, poll_interval: float
) -> tuple[float, float, float]:
    """Wall and CPU seconds of `tuner run` with everything it started, and its trials' span
    (see `tuner_span`)."""
    path = work / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment(trials, kind, parallel), sort_keys=False))
    tuner = Path(sys.executable).with_name("tuner")
    cpu = children_cpu()
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
    wall = time.perf_counter() - start
    reap_orphans()
    return wall, children_cpu() - cpu, tuner_span(work / "runs")


def tuner_span(run_dir: Path) -> float:
    """Seconds from the first trial's start to the last trial's end, as the trials'
    supervisors recorded them (``supervisor.json``'s first record, ``outcome.json``)."""
    starts, ends = [], []
    for outcome in run_dir.glob("*/outcome.json"):
        first = (outcome.parent / "supervisor.json").read_text().splitlines()[0]
        starts.append(json.loads(first)["started_at"])
        ends.append(json.loads(outcome.read_text())["finished_at"])
    return max(ends) - min(starts)


def run_optuna(trials: int, kind: str, parallel: int, work: Path) -> tuple[float, float, float]:
    """Wall and CPU seconds of the study (this process and the commands it ran), and the
    span from the first command's start to the last one's end."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    starts: list[float] = []
    ends: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -10, 10)
        starts.append(time.time())
        out = subprocess.run(argv(kind, repr(x)), check=True, capture_output=True, text=True)
        ends.append(time.time())
        match = re.search(r"loss=(\S+)", out.stdout)
        assert match is not None
        return float(match.group(1))

    cpu = own_cpu() + children_cpu()
    start = time.perf_counter()
    study = optuna.create_study(
        storage=f"sqlite:///{work / 'optuna.db'}",
        sampler=optuna.samplers.RandomSampler(seed=1),
    )
    study.optimize(objective, n_trials=trials, n_jobs=parallel)
    wall = time.perf_counter() - start
    return wall, own_cpu() + children_cpu() - cpu, max(ends) - min(starts)


def run_bare(trials: int, kind: str, parallel: int, work: Path) -> float:
    """Wall seconds of a launcher that does nothing but start the command, ``parallel`` at
    a time, and wait for it (stdout to a file; no suggestions, no storage): the formula's
    floor, where ``parallel`` commands share this machine's CPUs."""
    out = os.open(work / "bare.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    start = time.perf_counter()
    try:
        running = started = 0
        while started < trials or running:
            while running < parallel and started < trials:
                command = argv(kind, str(started))
                os.posix_spawn(
                    command[0], command, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, out, 1)]
                )
                started += 1
                running += 1
            os.wait()
            running -= 1
    finally:
        os.close(out)
    return time.perf_counter() - start


def cpu_overhead(trials: int, cpu: float, alone: float) -> float:
    return (cpu - trials * alone) / trials


def overhead(trials: int, parallel: int, wall: float, alone: float) -> float:
    return (wall * parallel - trials * alone) / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--parallel", default="1,4", help="comma-separated (default 1,4)")
    parser.add_argument("--commands", default="echo,python", help="echo, python or both")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="tuner's --poll-interval (its default: 0.5)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    kinds = args.commands.split(",")
    parallels = [int(p) for p in args.parallel.split(",")]
    _benchkit.compile_sources()

    import optuna

    become_subreaper()
    rows = []
    for kind in kinds:
        alone, alone_cpu = command_seconds(kind)
        for parallel in parallels:
            with tempfile.TemporaryDirectory(prefix="bench-orch-") as tmp:
                work = Path(tmp)
                (work / "tuner").mkdir()
                (work / "optuna").mkdir()
                tuner_wall, tuner_cpu, tuner_trials = run_tuner(
                    args.trials, kind, parallel, work / "tuner", args.poll_interval
                )
                optuna_wall, optuna_cpu, optuna_trials = run_optuna(
                    args.trials, kind, parallel, work / "optuna"
                )
                bare_wall = run_bare(args.trials, kind, parallel, work)
            t_over = overhead(args.trials, parallel, tuner_wall, alone)
            o_over = overhead(args.trials, parallel, optuna_wall, alone)
            t_span = overhead(args.trials, parallel, tuner_trials, alone)
            o_span = overhead(args.trials, parallel, optuna_trials, alone)
            rows.append(
                f"| `{' '.join(COMMANDS[kind])}` ({alone * 1000:.1f} ms) | {parallel} "
                f"| {args.trials / tuner_wall:.1f} | {args.trials / optuna_wall:.1f} "
                f"| {t_over * 1000:.1f} | {o_over * 1000:.1f} | {t_over / o_over:.2f} "
                f"| {cpu_overhead(args.trials, tuner_cpu, alone_cpu) * 1000:.1f} "
                f"| {cpu_overhead(args.trials, optuna_cpu, alone_cpu) * 1000:.1f} "
                f"| {t_span * 1000:.1f} | {o_span * 1000:.1f} | {t_span / o_span:.2f} "
                f"| {overhead(args.trials, parallel, bare_wall, alone) * 1000:.1f} |"
            )
            print(rows[-1], flush=True)

    command = "python benchmarks/bench_orchestration.py" + (
        f" --trials {args.trials}" if args.trials != 300 else ""
    )
    lines = [
        SECTION,
        "",
        f"{args.trials} quick trials (a command printing one metric), random search, SQLite "
        "storage for both; wall time end to end (tuner: the `tuner run` process including "
        "its start-up and in-process gRPC suggestion server; Optuna: `create_study` + "
        "`study.optimize(n_jobs=P)` running the command with `subprocess.run`). Overhead per "
        "trial = (wall x P - trials x command time) / trials, with the command's time alone "
        "(median of 20 sequential runs) in the first column. Ratio = tuner's overhead / "
        "Optuna's (below 1: tuner adds less). CPU overhead per trial = (CPU time of "
        "everything the run started, user + system, less trials x the command's) / trials: "
        "tuner's includes its start-up, its fork server, supervisors and suggestion server; "
        "Optuna's, its study in this process (Optuna already imported). tuner's modules "
        "are byte-compiled first, as an installed package's are. The span columns apply "
        "the same formula to the trials' span alone (the first trial's start to the last "
        "one's end: tuner's from its supervisors' records, Optuna's around "
        "`subprocess.run`), leaving out what each tool does once per run (tuner's process "
        "start, imports, database and servers; Optuna's `create_study`; Optuna's import is "
        "outside both figures). Floor: the same formula for a launcher that only starts "
        "the command P at a time and waits for it (`os.posix_spawn`, no suggestions, no "
        "storage): what P commands sharing this machine's CPUs cost by themselves.",
        "",
        "| command (alone) | P | tuner trials/s | Optuna trials/s | tuner overhead ms "
        "| Optuna overhead ms | ratio | tuner CPU ms | Optuna CPU ms | tuner span ms "
        "| Optuna span ms | span ratio | floor ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"tuner with `--poll-interval {args.poll_interval:g}` (its default), Optuna "
        f"{optuna.__version__}. Machine: {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()}. Command: `{command}`",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        _benchkit.write_section(HEADING, text)


if __name__ == "__main__":
    main()
