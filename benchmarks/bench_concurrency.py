"""Many experiments at once against one suggestion server process: GetSuggestions p50/p99
and the server's resident memory.

A server is started as its own process (``python -m suggestion.service``), so its RSS is
its own. ``--experiments`` client threads (default 50) each drive one tpe experiment over
Hartmann6 that already holds ``--trials`` completed trials (default 100): ``--calls``
sequential calls of 1 suggestion each, every reply completed and added to the next
request, all experiments at the same time. A health check is timed every 0.2 s meanwhile.

    python benchmarks/bench_concurrency.py               # writes its RESULTS.md section
    python benchmarks/bench_concurrency.py --experiments 5 --calls 2 --no-write
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _benchkit  # a sibling: a script's own folder is first on sys.path
import grpc
import numpy as np
from _functions import FUNCTIONS
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tuner.protos import api_pb2_grpc

HEADING = "Concurrent experiments"
FUNCTION = FUNCTIONS["hartmann6"]


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def drive(
    stub: api_pb2_grpc.SuggestionStub, name: str, algorithm: str, n: int, calls: int
) -> list[float]:
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    xs = rng.random((n, len(FUNCTION.names)))
    trials = [
        _benchkit.trial(
            f"{name}-t{i}",
            {k: repr(float(v)) for k, v in zip(FUNCTION.names, x, strict=True)},
            i,
            FUNCTION(x),
        )
        for i, x in enumerate(xs)
    ]
    experiment = _benchkit.experiment(
        name, algorithm, FUNCTION.bounds, settings={"random_state": "1"}
    )
    latencies = []
    for _ in range(calls):
        start = time.perf_counter()
        reply = stub.GetSuggestions(_benchkit.request(experiment, trials, 1), timeout=120)
        latencies.append(time.perf_counter() - start)
        for assignment in _benchkit.assignments(reply):
            x = [float(assignment[k]) for k in FUNCTION.names]
            trials.append(
                _benchkit.trial(f"{name}-t{len(trials)}", assignment, len(trials), FUNCTION(x))
            )
    return latencies


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=50)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--calls", type=int, default=10, help="sequential calls per experiment")
    parser.add_argument("--algorithm", default="tpe")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    server = subprocess.Popen(
        [sys.executable, "-m", "suggestion.service", "--address", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().rsplit(":", 1)[1])
        with grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)]
        ) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            health.Check(health_pb2.HealthCheckRequest(), timeout=30)
            stub = api_pb2_grpc.SuggestionStub(channel)
            drive(stub, "warm-up", args.algorithm, 20, 1)  # imports (optuna) happen once
            idle_rss, _ = rss_mb(server.pid)
            health_times: list[float] = []
            done = threading.Event()

            def probe() -> None:
                while not done.wait(0.2):
                    start = time.perf_counter()
                    health.Check(health_pb2.HealthCheckRequest(), timeout=60)
                    health_times.append(time.perf_counter() - start)

            prober = threading.Thread(target=probe)
            prober.start()
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.experiments) as pool:
                runs = list(
                    pool.map(
                        lambda i: drive(stub, f"exp-{i}", args.algorithm, args.trials, args.calls),
                        range(args.experiments),
                    )
                )
            wall = time.perf_counter() - start
            done.set()
            prober.join()
            busy_rss, peak_rss = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies = np.array([x for run in runs for x in run]) * 1000
    health_ms = np.array(health_times or [0.0]) * 1000
    row = [
        args.algorithm,
        str(args.experiments),
        str(args.trials),
        str(len(latencies)),
        f"{wall:.1f}",
        f"{np.percentile(latencies, 50):,.0f}",
        f"{np.percentile(latencies, 99):,.0f}",
        f"{np.percentile(health_ms, 50):,.1f}",
        f"{health_ms.max():,.0f}",
        f"{idle_rss:,.0f}",
        f"{busy_rss:,.0f}",
        f"{peak_rss:,.0f}",
    ]
    columns = (
        "algorithm",
        "experiments",
        "trials each",
        "calls",
        "wall s",
        "p50 ms",
        "p99 ms",
        "health p50 ms",
        "health max ms",
        "RSS idle MB",
        "RSS after MB",
        "RSS peak MB",
    )
    command = _benchkit.command_line("bench_concurrency.py", sys.argv[1:] if argv is None else argv)
    text = "\n".join(
        [
            f"## {HEADING}",
            "",
            f"Run {_benchkit.today()}: `{command}`",
            "",
            f"One server process (`python -m suggestion.service`, 16 threads); {args.experiments}"
            f" client threads, each one {args.algorithm} experiment over Hartmann6 starting with"
            f" {args.trials} completed trials and making {args.calls} sequential calls of 1"
            " suggestion (each reply completed and sent back with the next request); all"
            " experiments at once. Health probed every 0.2 s meanwhile. RSS from /proc"
            " (idle: after one warm-up call; peak: VmHWM).",
            "",
            _benchkit.table(columns, [row], numeric_from=1),
            "",
            "Machine: " + _benchkit.machine_notes(),
            "",
        ]
    )
    print(text)
    if not args.no_write:
        _benchkit.write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
