"""Scale: one experiment of 10,000 quick trials through `tuner run`, SQLite and PostgreSQL.

The trial is ``/bin/echo loss=<x>`` (random search, parallel 4, local executor, the
in-process suggestion server over gRPC). While `tuner run` runs, the controller process's
RSS is sampled every half second (psutil); afterwards the trials' completion times give the
rate over each 1,000 trials, and the database's size is read (the SQLite file with its WAL,
or ``pg_database_size``). The PostgreSQL run drops and recreates its database first.

    python benchmarks/bench_scale.py                          # 10,000 trials, writes RESULTS.md
    python benchmarks/bench_scale.py --trials 2000 --no-write
    python benchmarks/bench_scale.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test_h1
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import _benchkit  # a sibling: a script's own folder is first on sys.path
import psutil
import yaml

HEADING = "Scale: 10,000 trials"
SECTION = f"## {HEADING}"
BLOCK = 1000
RSS_LIMIT_MB = 300.0
RATE_FLOOR = 0.8


def experiment(trials: int, parallel: int) -> dict:
    return _benchkit.job_experiment(
        "bench-scale",
        ["/bin/echo", "loss=${trialParameters.x}"],
        trials=trials,
        parallel=parallel,
        parameter=("double", "0", "1"),
        settings={"random_state": "1"},
        max_failed=trials,
        image="busybox",
    )


@dataclass
class Run:
    backend: str
    wall: float
    samples: list[tuple[float, float]]  # (unix time, RSS MB) of the controller process
    completed: list[float]  # unix completion times, sorted
    succeeded: int
    total: int
    db_bytes: int

    def peak_rss(self) -> float:
        return max(mb for _, mb in self.samples)

    def rates(self) -> list[float]:
        """Trials per second over each block of `BLOCK` completions (the first block from
        the first completion's predecessor: the run's start)."""
        out = []
        for end in range(BLOCK, len(self.completed) + 1, BLOCK):
            start = self.completed[end - BLOCK - 1] if end > BLOCK else self.start
            out.append(BLOCK / max(self.completed[end - 1] - start, 1e-9))
        return out

    start: float = 0.0

    def rss_at(self, done: int) -> float:
        """The RSS sampled when ``done`` trials had completed (the first sample after)."""
        moment = self.completed[done - 1]
        times = [t for t, _ in self.samples]
        i = min(bisect_right(times, moment), len(self.samples) - 1)
        return self.samples[i][1]


def sample_rss(pid: int, out: list[tuple[float, float]], stop: threading.Event) -> None:
    try:
        process = psutil.Process(pid)
        while not stop.is_set():
            out.append((time.time(), process.memory_info().rss / 2**20))
            stop.wait(0.5)
    except psutil.NoSuchProcess:
        pass


def run(backend: str, url: str, work: Path, trials: int, parallel: int) -> Run:
    path = work / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment(trials, parallel), sort_keys=False))
    tuner = Path(sys.executable).with_name("tuner")
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    start = time.time()
    process = subprocess.Popen(
        [
            str(tuner),
            "run",
            str(path),
            "--db",
            url,
            "--run-dir",
            str(work / "runs"),
            "--no-progress",
        ],
        cwd=work,
        stdout=subprocess.DEVNULL,
    )
    sampler = threading.Thread(target=sample_rss, args=(process.pid, samples, stop))
    sampler.start()
    code = process.wait()
    wall = time.time() - start
    stop.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"tuner run exited with {code} ({backend})")
    from tuner.store import Store, TrialStatus

    with Store.open(url) as store:
        records = store.list_trials("bench-scale")
        completed = sorted(
            r.completed_at.replace(tzinfo=r.completed_at.tzinfo or timezone.utc).timestamp()
            for r in records
            if r.completed_at is not None
        )
        succeeded = sum(r.status is TrialStatus.SUCCEEDED for r in records)
        db_bytes = database_bytes(url, store)
    return Run(backend, wall, samples, completed, succeeded, len(records), db_bytes, start)


def database_bytes(url: str, store: object) -> int:
    if url.startswith("sqlite"):
        file = Path(url.split("///", 1)[1])
        return sum(p.stat().st_size for p in file.parent.glob(file.name + "*"))
    from sqlalchemy import text

    with store.engine.connect() as connection:  # type: ignore[attr-defined]
        return int(connection.execute(text("select pg_database_size(current_database())")).one()[0])


def reset_postgres(url: str) -> None:
    """Drop and recreate the benchmark's own database (named in ``url``)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    name = target.database
    if not name or not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise SystemExit(f"--postgres: database name {name!r} must be a plain identifier")
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def section(runs: list[Run], trials: int, parallel: int, command: str) -> str:
    blocks = max(len(r.rates()) for r in runs)
    head = "| | " + " | ".join(r.backend for r in runs) + " |\n|---|" + "---:|" * len(runs)
    lines = [head]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("trials stored / succeeded", [f"{r.total} / {r.succeeded}" for r in runs])
    row("wall time s", [f"{r.wall:.0f}" for r in runs])
    row("overall trials/s", [f"{r.total / r.wall:.1f}" for r in runs])
    for b in range(blocks):
        row(
            f"trials/s, trials {b * BLOCK + 1:,}-{(b + 1) * BLOCK:,}",
            [f"{r.rates()[b]:.1f}" if b < len(r.rates()) else "" for r in runs],
        )
    row(
        "last 1,000 / first 1,000 rate",
        [f"**{r.rates()[-1] / r.rates()[0]:.2f}**" if r.rates() else "" for r in runs],
    )
    for b in range(blocks):
        done = (b + 1) * BLOCK
        row(
            f"controller RSS MB at {done:,} trials",
            [f"{r.rss_at(done):.0f}" if done <= len(r.completed) else "" for r in runs],
        )
    row("controller peak RSS MB", [f"**{r.peak_rss():.0f}**" for r in runs])
    row("database size MB", [f"{r.db_bytes / 2**20:.1f}" for r in runs])
    row("database bytes per trial", [f"{r.db_bytes / max(r.total, 1):.0f}" for r in runs])
    verdicts = []
    for r in runs:
        rates = r.rates()
        ok_rate = bool(rates) and rates[-1] >= RATE_FLOOR * rates[0]
        ok_rss = r.peak_rss() < RSS_LIMIT_MB
        verdicts.append(
            f"{r.backend}: peak RSS {'<' if ok_rss else '>='} {RSS_LIMIT_MB:.0f} MB, last/first"
            f" rate {'>=' if ok_rate else '<'} {RATE_FLOOR}"
        )
    return (
        f"{SECTION}\n\n"
        f"One experiment of {trials:,} trials of `/bin/echo loss=<x>` (random search, "
        f"parallelTrialCount {parallel}, local executor, in-process suggestion server over "
        "gRPC, `tuner run --no-progress`), once with SQLite and once with PostgreSQL, end "
        "to end. RSS: the `tuner run` process (controller and suggestion server; the "
        "per-trial supervisors are separate processes), sampled every 0.5 s, read at the "
        "moment each 1,000th trial completed. Rates from the trials' stored completion "
        "times. Database size after the run (SQLite: file + WAL; PostgreSQL: "
        "`pg_database_size`, including its empty-database baseline of ~7 MB).\n\n"
        + "\n".join(lines)
        + "\n\n"
        + "; ".join(verdicts)
        + f". Machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, Python "
        f"{platform.python_version()} (shared with other jobs). Command: `{command}`\n"
    )


def request_costs(sizes: tuple[int, ...] = (1_000, 10_000), calls: int = 30) -> list[str]:
    """Table rows: median milliseconds of one GetSuggestions round trip (client conversion,
    gRPC, server decode, random's answer) with ``n`` finished trials plus one new running
    trial per call, full requests vs incremental ones, side by side in this process."""
    import statistics

    from suggestion.service import create_server
    from tuner.controller import SuggestionClient
    from tuner.spec import Experiment
    from tuner.store import MetricSummary, TrialRecord, TrialStatus

    now = datetime.now(timezone.utc)

    def record(name: str, x: str, status: TrialStatus) -> TrialRecord:
        done = status is TrialStatus.SUCCEEDED
        return TrialRecord(
            name=name,
            experiment_name="",
            parameters={"x": x},
            status=status,
            objective_value=float(x) if done else None,
            metrics_summary={"loss": MetricSummary(float(x), float(x), float(x))} if done else {},
            executor_kind=None,
            executor_ref=None,
            exit_code=None,
            message=None,
            log_path=None,
            created_at=now,
            started_at=now,
            completed_at=now if done else None,
        )

    server, port = create_server("127.0.0.1:0")
    rows = []
    try:
        for n in sizes:
            medians = []
            for incremental in (False, True):
                document = experiment(n + calls + 1, 4)
                document["metadata"]["name"] = f"cost-{n}-{int(incremental)}x"
                spec = Experiment.model_validate(document)
                trials = {
                    f"t{i}": record(f"t{i}", repr((i + 0.5) / (n + 1)), TrialStatus.SUCCEEDED)
                    for i in range(n)
                }
                with SuggestionClient(f"127.0.0.1:{port}", incremental=incremental) as client:
                    client.suggest(spec, list(trials.values()), 1, n + 1)
                    times = []
                    for k in range(calls):
                        trials[f"u{k}"] = record(f"u{k}", repr(0.5 + k / 1e6), TrialStatus.RUNNING)
                        start = time.perf_counter()
                        client.suggest(spec, list(trials.values()), 1, len(trials) + 1)
                        times.append(time.perf_counter() - start)
                medians.append(statistics.median(times) * 1000)
            rows.append(
                f"| {n:,} | {medians[0]:.1f} | {medians[1]:.1f} | {medians[0] / medians[1]:.1f} |"
            )
    finally:
        server.stop(None)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TUNER_TEST_POSTGRES_URL"),
        help="PostgreSQL URL whose database is dropped and recreated (default: "
        "$TUNER_TEST_POSTGRES_URL; none: SQLite only)",
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        if not args.no_sqlite:
            work = Path(tmp) / "sqlite"
            work.mkdir()
            runs.append(
                run("SQLite", f"sqlite:///{work / 'tuner.db'}", work, args.trials, args.parallel)
            )
            print(
                f"SQLite: {runs[-1].wall:.0f} s, rates {[round(r, 1) for r in runs[-1].rates()]}",
                f"peak RSS {runs[-1].peak_rss():.0f} MB",
                flush=True,
            )
        if args.postgres:
            reset_postgres(args.postgres)
            work = Path(tmp) / "postgres"
            work.mkdir()
            runs.append(run("PostgreSQL", args.postgres, work, args.trials, args.parallel))
            print(
                f"PostgreSQL: {runs[-1].wall:.0f} s, rates "
                f"{[round(r, 1) for r in runs[-1].rates()]}",
                f"peak RSS {runs[-1].peak_rss():.0f} MB",
                flush=True,
            )
    shown = ["python", "benchmarks/bench_scale.py"]
    if args.trials != 10_000:
        shown += ["--trials", str(args.trials)]
    if args.postgres:
        shown += ["--postgres", re.sub(r"//[^@/]*@", "//postgres@", args.postgres)]
    costs = request_costs()
    text = section(runs, args.trials, args.parallel, " ".join(shown))
    text += (
        "\nOne GetSuggestions round trip (median ms of 30; client conversion, gRPC, server"
        " decode, random's answer) with n finished trials and one new running trial per call,"
        " Katib's full requests vs tuner's incremental ones, measured side by side in the"
        " same run:\n\n| trials held | full ms | incremental ms | full / incremental |\n"
        "|---:|---:|---:|---:|\n" + "\n".join(costs) + "\n"
    )
    print(text)
    if not args.no_write:
        _benchkit.write_section(HEADING, text)


if __name__ == "__main__":
    main()
