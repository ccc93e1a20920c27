"""One `tuner controller` replica driving 100 experiments of quick trials at once, in a few
configurations side by side: total trials/s, how long each experiment waited for its first
trial, the per-experiment lag and queue depth that /metrics showed, and the replica's RSS.

Each configuration gets a fresh SQLite file (or ``--db``: a PostgreSQL URL whose schema is
emptied first), ``--experiments`` experiments (default 100) of ``--trials`` sequential trials
each (default 3) running ``/bin/echo loss=1``, submitted before the controller starts. The
controller is a real subprocess with the local executor; /metrics is scraped every 0.2 s.

    python benchmarks/bench_service_scale.py               # writes its RESULTS.md section
    python benchmarks/bench_service_scale.py --experiments 10 --trials 2 --no-write
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import _benchkit  # a sibling: a script's own folder is first on sys.path
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tuner.cli import main as tuner_main
from tuner.store import Store

COMMAND = ["/bin/echo", "loss=1", "x=${trialParameters.x}"]
HEADING = "Service mode at scale (100 experiments, one replica)"

CONFIGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # What the service did before the worker pool: a free-running thread per driven
    # experiment, 10 driven at a time (the old default).
    (
        "10 driven, a thread each (before)",
        ("--max-concurrent-experiments", "10", "--workers", "10"),
    ),
    ("100 driven, a thread each, no queue", ("--workers", "100")),
    ("100 driven, 16 workers", ("--workers", "16")),
    ("100 driven, 8 workers (default)", ()),
    ("100 driven, 2 workers", ("--workers", "2")),
)


def tuner_command() -> list[str]:
    script = Path(sys.executable).with_name("tuner")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from tuner.cli import main; sys.exit(main())"]


def experiment(name: str, trials: int) -> dict[str, Any]:
    return _benchkit.job_experiment(
        name,
        COMMAND,
        trials=trials,
        parallel=1,
        parameter=("int", "0", "1000000"),
        namespace="default",
        container="training",
        image="busybox",
    )


def fresh_db(root: Path, db: str | None, index: int) -> str:
    if db is None:
        return f"sqlite:///{root / f'tuner-{index}.db'}"
    from sqlalchemy import create_engine, text

    from tuner.store._engine import resolve_url

    engine = create_engine(resolve_url(db))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return db


def scrape(address: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        body = response.read().decode()
    return {f.name: f for f in text_string_to_metric_families(body)}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def unix(moment: datetime) -> float:
    return moment.replace(tzinfo=moment.tzinfo or timezone.utc).timestamp()


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_config(
    root: Path, db_url: str, flags: Sequence[str], experiments: int, trials: int
) -> dict[str, float]:
    names = [f"quick-{i:03d}" for i in range(experiments)]
    path = root / "quick.yaml"
    path.write_text(yaml.safe_dump_all([experiment(n, trials) for n in names], sort_keys=False))
    if tuner_main(["submit", str(path), "--db", db_url]) != 0:
        raise SystemExit("tuner submit failed")
    argv = [
        *tuner_command(),
        "controller",
        "--db",
        db_url,
        "--run-dir",
        str(root / "runs"),
        "--metrics-address",
        "127.0.0.1:0",
        *flags,
    ]
    log = (root / "controller.log").open("wb")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        banner = proc.stdout.readline() if proc.stdout else ""
        started = time.time()
        if "metrics http://" not in banner:
            raise SystemExit(f"controller did not start: {banner!r}")
        address = banner.split("metrics http://", 1)[1].split("/", 1)[0]
        lags: list[float] = []
        max_queue = 0.0
        while True:
            families = scrape(address)
            queue = families.get("tuner_queue_depth")
            if queue is not None and queue.samples:
                max_queue = max(max_queue, queue.samples[0].value)
            lag = families.get("tuner_experiment_lag_seconds")
            lags += [s.value for s in lag.samples] if lag is not None else []
            counts = families.get("tuner_trials")
            done = {s.labels["status"]: s.value for s in counts.samples} if counts else {}
            experiments_done = families.get("tuner_experiments")
            succeeded = (
                {s.labels["status"]: s.value for s in experiments_done.samples}.get("Succeeded")
                if experiments_done
                else 0
            )
            if succeeded == experiments and done.get("Succeeded") == experiments * trials:
                break
            if proc.poll() is not None:
                raise SystemExit(f"controller exited: {(root / 'controller.log').read_text()}")
            time.sleep(0.2)
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
        log.close()
    with Store.open(db_url) as store:
        first_waits, last_end = [], 0.0
        for name in names:
            listed = store.list_trials(name)
            first = min(t.created_at for t in listed)
            first_waits.append(unix(first) - started)
            ends = [t.completed_at for t in listed if t.completed_at is not None]
            if ends:
                last_end = max(last_end, unix(max(ends)))
    wall = (last_end - started) if last_end else time.time() - started
    return {
        "trials_per_s": experiments * trials / wall,
        "wall": wall,
        "first_p50": percentile(first_waits, 0.5),
        "first_p99": percentile(first_waits, 0.99),
        "lag_p50": percentile(lags, 0.5),
        "lag_p99": percentile(lags, 0.99),
        "max_queue": max_queue,
        "rss": rss,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", type=int, default=100)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--db", help="a PostgreSQL URL to use instead of SQLite files (emptied)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        for index, (label, flags) in enumerate(CONFIGS):
            root = Path(tmp) / str(index)
            root.mkdir()
            result = run_config(
                root, fresh_db(root, args.db, index), flags, args.experiments, args.trials
            )
            print(label, {k: round(v, 3) for k, v in result.items()}, flush=True)
            lag = (
                "-"
                if result["lag_p50"] != result["lag_p50"]  # NaN: no series
                else f"{result['lag_p50']:.2f} / {result['lag_p99']:.2f}"
            )
            rows.append(
                [
                    label,
                    f"{result['trials_per_s']:.1f}",
                    f"{result['first_p50']:.1f} / {result['first_p99']:.1f}",
                    lag,
                    f"{result['max_queue']:.0f}",
                    f"{result['rss']:.0f}",
                ]
            )
    table = _benchkit.table(
        [
            "configuration",
            "trials/s",
            "first trial after s (p50 / p99)",
            "lag s (p50 / p99)",
            "max queue depth",
            "peak RSS MB",
        ],
        rows,
        numeric_from=1,
    )
    database = "PostgreSQL" if args.db else "SQLite"
    text = f"""## {HEADING}

{args.experiments} experiments x {args.trials} sequential trials of `/bin/echo loss=1` (random
search, local executor, {database}), all submitted before one `tuner controller` replica
starts (`--poll-interval 1`, `--lease-seconds 30`, the in-process suggestion server); /metrics
scraped every 0.2 s. "first trial after": seconds from the controller's start to each
experiment's first trial row (fairness: before, the last experiments waited for the first
ones to finish). "lag": every sample of `tuner_experiment_lag_seconds` (seconds since the
experiment's last loop pass ended) over all scrapes; "max queue depth": the largest
`tuner_queue_depth` (experiments waiting for a worker). trials/s: all trials over the time
from the controller's start to the last trial's end. Peak RSS: the controller's VmHWM.
"before" is the service as it was (a free-running thread per driven experiment, 10 at a
time), run here as `--max-concurrent-experiments 10 --workers 10`.

{table}

{_benchkit.machine_notes()} Measured {_benchkit.today()}.
Command: `{_benchkit.command_line("bench_service_scale.py", list(argv or sys.argv[1:]))}`
"""
    print(text)
    if not args.no_write:
        _benchkit.write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
