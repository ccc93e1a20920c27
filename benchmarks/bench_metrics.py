"""Metrics collection at scale: MB/s parsed and peak RSS for logs of 1 M and 10 M metric lines.

Each measurement runs in a fresh child process (its own peak RSS, from getrusage):

- ``re-floor``: a plain ``re`` scan of the log line by line with Katib's default filter (no
  value parsing, nothing kept): the floor of a per-line Python parser.
- ``line``: tuner's StdOut collector parsing line by line (the path before the block scan,
  still used for custom filters and timestamped lines).
- ``block``: tuner's StdOut collector as it runs now (default filter, one scan per chunk).
- ``collect``: the whole collection path of the controller: the collector streamed into a
  SQLite store by ``collect_into_store`` in batches with their checkpoints, then the trial's
  summary read back as the controller does when the trial ends.
- ``collect-cap``: ``collect`` with the experiment's cap on stored reports per metric
  (``--cap N``, the annotation ``tuner.kubeflow.org/max-observations-per-metric``).

Usage: python benchmarks/bench_metrics.py [--lines 1000000 10000000] [--no-write]
       python benchmarks/bench_metrics.py --cap 1000 [--lines 1000000]: ``collect`` and
       ``collect-cap`` side by side, with the database's size (section "Observation cap")
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _benchkit

from tuner.metrics import DEFAULT_METRICS_FORMAT, CollectorConfig, StdOutCollector

MODES = ("re-floor", "line", "block", "collect")
CAP_MODES = ("collect", "collect-cap")
METRICS = ("loss",)


def write_log(path: Path, lines: int) -> None:
    """``lines`` lines of about 100 bytes, like a training loop's progress output."""
    with path.open("w") as f:
        for start in range(0, lines, 100_000):
            f.write(
                "".join(
                    f"epoch {i // 10_000}/1000 step={i} loss={1 / (i + 1):.8f}"
                    f" accuracy={(i % 1000) / 1000:.4f} lr=0.00100 time=0.0123s batch 64/64 ok\n"
                    for i in range(start, min(lines, start + 100_000))
                )
            )


def measure(mode: str, log: Path, db: Path, cap: int) -> dict[str, float]:
    started = time.perf_counter()
    points = 0
    if mode == "re-floor":
        regex = re.compile(DEFAULT_METRICS_FORMAT.encode(), re.ASCII)
        with log.open("rb") as f:
            for line in f:
                if b"loss" in line:
                    points += sum(1 for m in regex.finditer(line) if m.group(1) == b"loss")
    elif mode in ("line", "block"):
        with StdOutCollector(CollectorConfig(METRICS, log_path=log)) as collector:
            if mode == "line":
                collector._parser._block_regex = None  # type: ignore[attr-defined]
            while chunk := collector.collect(max_bytes=8 * 1024 * 1024):
                points += len(chunk)
            points += len(collector.collect(final=True))
    else:
        from tuner.controller._collection import collect_into_store
        from tuner.metrics import ObservationCap
        from tuner.store import Store

        store = Store.open(f"sqlite:///{db}")
        spec = {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random"},
        }
        store.create_experiment("bench", "default", spec)
        store.create_trials("bench", [("bench-t1", {"x": "1"})])
        with StdOutCollector(CollectorConfig(METRICS, log_path=log)) as collector:
            points = collect_into_store(
                store,
                "bench-t1",
                collector,
                final=True,
                max_bytes=None,
                cap=ObservationCap(cap) if mode == "collect-cap" else None,
            )
        summary = store.observation_summary("bench-t1", METRICS)["loss"]
        assert summary.latest > 0
        store.close()
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"seconds": seconds, "points": points, "rss_mb": rss_mb}
    if mode.startswith("collect"):
        with sqlite3.connect(db) as conn:
            out["points"] = conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
        out["db_mb"] = sum(f.stat().st_size for f in db.parent.glob(f"{db.name}*")) / 1e6
        out["summary"] = [summary.min, summary.max, summary.latest]  # type: ignore[assignment]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument(
        "--cap",
        type=int,
        metavar="N",
        help="measure collect and collect-cap (at most N stored reports per metric) instead",
    )
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    parser.add_argument(
        "--child", nargs=4, metavar=("MODE", "LOG", "DB", "CAP"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        mode, log, db, cap = args.child
        print(json.dumps(measure(mode, Path(log), Path(db), int(cap))))
        return
    if args.cap is not None:
        compare_cap(args)
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        for lines in args.lines:
            log = Path(tmp) / f"log-{lines}.txt"
            write_log(log, lines)
            size = log.stat().st_size
            for mode in args.modes:
                db = Path(tmp) / f"{mode}-{lines}.db"
                out = subprocess.run(
                    [sys.executable, __file__, "--child", mode, str(log), str(db), "0"],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                result = json.loads(out.strip().splitlines()[-1])
                row = [
                    f"{lines:,}",
                    f"{size / 1e6:,.0f}",
                    mode,
                    f"{int(result['points']):,}",
                    f"{result['seconds']:.1f}",
                    f"{size / 1e6 / result['seconds']:.1f}",
                    f"{result['rss_mb']:.0f}",
                ]
                print(" | ".join(row), flush=True)
                rows.append(row)
            log.unlink()
            for db in Path(tmp).glob("*.db"):
                db.unlink()
    command = _benchkit.command_line("bench_metrics.py", sys.argv[1:])
    header = ["lines", "log MB", "path", "points", "s", "MB/s", "peak RSS MB"]
    text = "\n\n".join(
        [
            "## Metrics collection",
            f"Run {_benchkit.today()}: `{command}`",
            "Lines of about 100 bytes (`epoch 3/1000 step=31234 loss=0.00003201"
            " accuracy=0.2340 lr=0.00100 time=0.0123s batch 64/64 ok`), objective `loss`,"
            " StdOut collector with Katib's default filter, each path in its own process"
            " (peak RSS of that process)."
            " `re-floor`: a plain `re` scan line by line, nothing parsed or kept; `line`: the"
            " collector parsing line by line (the path before this change, still used for"
            " custom filters and timestamped lines); `block`: the collector as it runs now"
            " (one scan per chunk); `collect`: the controller's path, observations streamed"
            " into SQLite in 256 KB batches each with its checkpoint, then the trial summary"
            " computed by the database. MB/s of `collect` includes the inserts.",
            _benchkit.table(header, rows, 3),
            f"Machine: {os.cpu_count()} CPUs, shared with other work (timings noisy).",
        ]
    )
    if not args.no_write:
        _benchkit.write_section("Metrics collection", text)
    print(text)


def compare_cap(args: argparse.Namespace) -> None:
    """``collect`` and ``collect-cap`` on the same logs, each in its own process."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-metrics-cap-") as tmp:
        for lines in args.lines:
            log = Path(tmp) / f"log-{lines}.txt"
            write_log(log, lines)
            size = log.stat().st_size
            summaries = []
            for mode in CAP_MODES:
                db = Path(tmp) / f"{mode}-{lines}.db"
                out = subprocess.run(
                    [sys.executable, __file__, "--child", mode, str(log), str(db), str(args.cap)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                result = json.loads(out.strip().splitlines()[-1])
                summaries.append(result["summary"])
                row = [
                    f"{lines:,}",
                    f"{size / 1e6:,.0f}",
                    mode if mode == "collect" else f"{mode} {args.cap:,}",
                    f"{int(result['points']):,}",
                    f"{result['seconds']:.1f}",
                    f"{size / 1e6 / result['seconds']:.1f}",
                    f"{result['rss_mb']:.0f}",
                    f"{result['db_mb']:.1f}",
                ]
                print(" | ".join(row), flush=True)
                rows.append(row)
            # The cap changes what is stored, never the trial's min / max / latest.
            assert summaries[0] == summaries[1], summaries
            log.unlink()
    command = _benchkit.command_line("bench_metrics.py", sys.argv[1:])
    header = ["lines", "log MB", "path", "stored", "s", "MB/s", "peak RSS MB", "DB MB"]
    text = "\n\n".join(
        [
            "## Observation cap",
            f"Run {_benchkit.today()}: `{command}`",
            'The log and collection path of "Metrics collection" (objective `loss`, StdOut'
            " collector, 256 KB batches into SQLite, each with its checkpoint), each run in its"
            " own process: `collect` stores every report; `collect-cap N` is the same with the"
            " experiment's cap (annotation `tuner.kubeflow.org/max-observations-per-metric`):"
            " at most N evenly spread reports kept, plus min, max and latest, off-stride ones"
            " deleted in each batch's transaction. `stored`: observations in the database at"
            " the end; `DB MB`: the SQLite file (with its WAL). The trial's min / max / latest"
            " were equal in both runs (the benchmark checks it).",
            _benchkit.table(header, rows, 3),
            f"Machine: {os.cpu_count()} CPUs, shared with other work (timings noisy).",
        ]
    )
    if not args.no_write:
        _benchkit.write_section("Observation cap", text)
    print(text)


if __name__ == "__main__":
    main()
