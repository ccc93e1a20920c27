"""Where a quick trial's time goes in `tuner run`: wall time per trial by phase.

Runs `tuner run` in this process (``tuner.cli.main``) on N ``/bin/echo loss=1`` trials with
random search and SQLite, with timers around the store's calls, the GetSuggestions round
trip, the executor's launch (the supervisor's fork and exec), the loop's wait for a trial
to end, and the rest of each loop pass; and the CPU time of the controller process and of
its children (fork server, supervisors, commands). Also times, alone: the supervisor
running the same command (``python -I -S _supervisor.py ... -- /bin/echo``, and forked by
the fork server until it exits), ``/bin/echo`` itself, and `tuner run` of a single trial
(start-up and shut-down).

    python benchmarks/bench_overhead_breakdown.py --trials 200 --parallel 1
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _benchkit  # siblings: a script's own folder is first on sys.path
import bench_orchestration
import yaml

from tuner.cli import main as tuner_main
from tuner.controller import _controller, _suggestions, _trials
from tuner.executors import _local
from tuner.executors import _supervisor as sv
from tuner.store import Store

TIMES: dict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter[str] = collections.Counter()


def timed(owner: Any, attribute: str, label: str) -> None:
    original: Callable[..., Any] = getattr(owner, attribute)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            TIMES[label] += time.perf_counter() - start
            CALLS[label] += 1

    setattr(owner, attribute, wrapper)


def experiment(trials: int, parallel: int) -> dict[str, Any]:
    """bench_orchestration's /bin/echo experiment (random over one double)."""
    document = bench_orchestration.experiment(trials, "echo", parallel)
    document["metadata"]["name"] = "breakdown"
    return document


CPU: dict[str, float] = {}


def run(work: Path, trials: int, parallel: int) -> float:
    """Wall seconds of `tuner run`; its CPU seconds, the controller's (this process) and its
    children's (fork server, supervisors, commands; reaped once the run ended), in CPU."""
    path = work / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment(trials, parallel), sort_keys=False))
    argv = ["run", str(path), "--db", f"sqlite:///{work / 'tuner.db'}"]
    argv += ["--run-dir", str(work / "runs"), "--no-progress"]
    own, children = bench_orchestration.own_cpu(), bench_orchestration.children_cpu()
    start = time.perf_counter()
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        code = tuner_main(argv)
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"tuner run exited with {code}")
    bench_orchestration.reap_orphans()
    CPU["controller"] = bench_orchestration.own_cpu() - own
    CPU["children"] = bench_orchestration.children_cpu() - children
    return wall


def median_seconds(argv: list[str], samples: int = 30, **kwargs: Any) -> float:
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def trial_lock(trial_dir: Path) -> int:
    """The descriptor a launch hands the supervisor as its lock: the trial directory (a
    ``supervisor.lock`` file with a tuner from before protocol 2)."""
    if hasattr(sv, "LOCK_FILE"):
        return os.open(trial_dir / sv.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    return os.open(trial_dir, os.O_RDONLY | os.O_DIRECTORY)


def supervisor_seconds(work: Path) -> float:
    times = []
    for i in range(30):
        trial_dir = work / f"sv{i}"
        trial_dir.mkdir()
        lock = trial_lock(trial_dir)
        argv = [sys.executable, "-I", "-S", sv.__file__, str(trial_dir), str(work), "-", "1"]
        start = time.perf_counter()
        subprocess.run(
            [*argv, str(lock), "--", "/bin/echo", "loss=1"],
            check=True,
            stdout=subprocess.DEVNULL,
            pass_fds=(lock,),
        )
        times.append(time.perf_counter() - start)
        os.close(lock)
    return statistics.median(times)


def forked_supervisor_seconds(work: Path) -> float | None:
    """The same, the supervisor forked by the local executor's fork server (Linux)."""
    try:
        from tuner.executors import _local_forkserver as forkserver
    except ImportError:  # a tuner from before the fork server
        return None
    if not forkserver.available():
        return None
    server = forkserver.ForkServer(sys.executable)
    times = []
    try:
        for i in range(30):
            trial_dir = work / f"fork{i}"
            trial_dir.mkdir()
            lock = trial_lock(trial_dir)
            log = os.open(trial_dir / sv.LOG_FILE, os.O_WRONLY | os.O_CREAT, 0o644)
            start = time.perf_counter()
            pid, _ = server.start_supervisor(
                trial_dir=str(trial_dir),
                working_dir=str(work),
                deadline=None,
                grace=1.0,
                argv=["/bin/echo", "loss=1"],
                env=dict(os.environ),
                cpus="",
                log_fd=log,
                lock_fd=lock,
            )
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:  # ended and reaped already
                pass
            else:
                select.select([pidfd], [], [])
                os.close(pidfd)
            times.append(time.perf_counter() - start)
            for fd in (lock, log):
                os.close(fd)
    finally:
        server.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=1)
    args = parser.parse_args()
    _benchkit.compile_sources()

    for name in (
        "create_trials",
        "update_trial",
        "finish_trial",
        "best_trial",
        "count_trials",
        "list_trials",
        "add_observations",
        "observation_summary",
        "get_observations",
        "renew_lease",
    ):
        timed(Store, name, f"store.{name}")
    timed(_suggestions.SuggestionClient, "suggest", "GetSuggestions (gRPC round trip)")
    timed(_local.LocalExecutor, "launch", "executor.launch (supervisor start)")
    timed(_local.LocalExecutor, "poll", "executor.poll")
    timed(_trials.TrialRunner, "wait", "loop wait for a trial to end")
    timed(_controller.Controller, "_loop", "loop total")

    bench_orchestration.become_subreaper()  # the fork server's CPU is counted once reaped
    with tempfile.TemporaryDirectory(prefix="bench-breakdown-") as tmp:
        work = Path(tmp)
        (work / "one").mkdir()
        one = run(work / "one", 1, 1)
        TIMES.clear()
        CALLS.clear()
        (work / "many").mkdir()
        wall = run(work / "many", args.trials, args.parallel)
        supervisor = supervisor_seconds(work)
        forked = forked_supervisor_seconds(work)
    echo = median_seconds(["/bin/echo", "loss=1"])

    n = args.trials
    print("| phase | calls | ms per trial |")
    print("|---|---:|---:|")
    loop = TIMES.pop("loop total")
    accounted = 0.0
    for label, seconds in sorted(TIMES.items(), key=lambda kv: -kv[1]):
        accounted += seconds
        print(f"| {label} | {CALLS[label]} | {seconds / n * 1000:.2f} |")
    print(
        f"| rest of the loop (collection, records, decisions) | | "
        f"{(loop - accounted) / n * 1000:.2f} |"
    )
    print(f"| loop total | | {loop / n * 1000:.2f} |")
    print(f"| `tuner run` wall / trials | | {wall / n * 1000:.2f} |")
    print(
        f"| CPU / trials: controller process (start-up included) | | "
        f"{CPU['controller'] / n * 1000:.2f} |"
    )
    print(
        f"| CPU / trials: its children (fork server, supervisors, commands) | | "
        f"{CPU['children'] / n * 1000:.2f} |"
    )
    print()
    print(
        f"`tuner run` of 1 trial (start-up, shut-down): {one * 1000:.0f} ms; supervisor "
        f"process running `/bin/echo loss=1` alone: {supervisor * 1000:.1f} ms; "
        + ("" if forked is None else f"forked by the fork server: {forked * 1000:.1f} ms; ")
        + f"`/bin/echo loss=1` "
        f"alone: {echo * 1000:.1f} ms. {n} trials, parallel {args.parallel}, "
        f"{os.cpu_count()} CPUs."
    )


if __name__ == "__main__":
    main()
