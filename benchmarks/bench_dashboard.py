"""Dashboard: time to first chart of a 10,000-trial experiment, in headless Chromium.

A SQLite store is filled through the store API with N finished trials (three parameters, the
objective, a three-step observation log each); the dashboard is served by uvicorn on
127.0.0.1:0 in this process; Debian's Chromium (driven by Playwright) opens the experiment's
page. Measured per repetition, on a new server (nothing cached) and then on a reload (charts
cached for the unchanged experiment):

- **first chart**: from navigation start to the optimisation history drawn;
- **table**: to the trial table filled (all N rows loaded, first page shown);
- **all charts**: to every chart drawn (importances and contour are the slow ones).

Also, without a browser, the two API calls behind the first chart (`/api/trials`,
`/api/figure?kind=history`) timed with urllib. Usage:

    python benchmarks/bench_dashboard.py [--trials 10000] [--reps 3] [--no-write]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import _benchkit

from tuner.store import MetricSummary, Observation, Store, TrialStatus

HEADING = "Dashboard time to first chart"
CHROMIUM = "/usr/bin/chromium"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def spec() -> dict[str, Any]:
    return {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": "random"},
        "parameters": [
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-5", "max": "5"}},
            {"name": "y", "parameterType": "int", "feasibleSpace": {"min": "-3", "max": "3"}},
            {
                "name": "shape",
                "parameterType": "categorical",
                "feasibleSpace": {"list": ["bowl", "valley"]},
            },
        ],
    }


def fill(store: Store, name: str, n: int) -> None:
    """`n` Succeeded trials of experiment `name`, each with a three-step observation log."""
    store.create_experiment(name, "default", spec())
    store.set_experiment_status(name, "Running")
    trials = []
    for i in range(n):
        x = -5 + 10 * ((i * 0.618034) % 1)
        trials.append(
            (
                f"{name}-{i:05d}",
                {"x": f"{x:.5f}", "y": str(i % 7 - 3), "shape": "bowl" if i % 2 else "valley"},
            )
        )
    store.create_trials(name, trials, status=TrialStatus.RUNNING)
    for i, (trial, params) in enumerate(trials):
        loss = float(params["x"]) ** 2 + abs(int(params["y"])) + (i % 13) / 13
        began = T0 + timedelta(seconds=5 * i)
        store.add_observations(
            trial,
            [
                Observation(trial, "loss", loss * (3 - s), s, began + timedelta(seconds=s + 1))
                for s in range(3)
            ],
        )
        store.finish_trial(
            trial,
            TrialStatus.SUCCEEDED,
            loss,
            {"loss": MetricSummary(loss, 3 * loss, loss)},
            exit_code=0,
            completed_at=began + timedelta(seconds=4),
        )
    store.set_experiment_status(name, "Succeeded", "MaxTrialsReached")


class Served:
    def __init__(self, store: Store) -> None:
        from tuner import dashboard

        self.sock = dashboard.bind(dashboard.Address("127.0.0.1", 0))
        self.server = dashboard.server(store)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        self.url = dashboard.url_of(self.sock).rstrip("/")

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.sock.close()


def timed_get(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as r:
        r.read()
    return time.perf_counter() - start


def browser_times(page: Any, url: str) -> dict[str, float]:
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("#fig-history[data-state='drawn']", state="attached")
    first = time.perf_counter() - start
    page.wait_for_selector("#trials tbody tr", state="attached")
    table = time.perf_counter() - start
    page.wait_for_selector(".charts .plot:not([data-state])", state="detached")
    every = time.perf_counter() - start
    return {"first chart": first, "table": table, "all charts": every}


def fmt(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):.2f}" if seconds else "n/a"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true", help="API timings only")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    use_browser = not args.no_browser and Path(CHROMIUM).exists()
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp, Store.open(f"sqlite:///{tmp}/bench.db") as store:
        began = time.perf_counter()
        fill(store, "bench", args.trials)
        fill_seconds = time.perf_counter() - began
        print(f"# filled {args.trials} trials in {fill_seconds:.0f} s", file=sys.stderr)
        cold: dict[str, list[float]] = {}
        warm: dict[str, list[float]] = {}
        api: dict[str, list[float]] = {"GET /api/trials": [], "GET /api/figure history": []}
        for _ in range(args.reps):
            served = Served(store)
            try:
                q = "experiment=bench"
                api["GET /api/trials"].append(timed_get(f"{served.url}/api/trials?{q}"))
                api["GET /api/figure history"].append(
                    timed_get(f"{served.url}/api/figure?{q}&kind=history")
                )
            finally:
                served.close()
        if use_browser:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
                )
                for _ in range(args.reps):
                    served = Served(store)  # a new server: no chart cached
                    try:
                        page = browser.new_page(viewport={"width": 1400, "height": 900})
                        page.set_default_timeout(600_000)
                        for key, value in browser_times(
                            page, served.url + "/experiments/bench"
                        ).items():
                            cold.setdefault(key, []).append(value)
                        for key, value in browser_times(
                            page, served.url + "/experiments/bench"
                        ).items():
                            warm.setdefault(key, []).append(value)
                        page.close()
                    finally:
                        served.close()
                    print(f"# cold {cold['first chart'][-1]:.2f} s", file=sys.stderr)
                browser.close()
        for key in ("first chart", "table", "all charts"):
            rows.append(
                [
                    f"browser: {key}",
                    str(args.trials),
                    str(len(cold.get(key, []))),
                    fmt(cold.get(key, [])),
                    fmt(warm.get(key, [])),
                ]
            )
        for key, values in api.items():
            rows.append([key, str(args.trials), str(len(values)), fmt(values), "n/a"])

    command = _benchkit.command_line("bench_dashboard.py", sys.argv[1:] if argv is None else argv)
    first = statistics.median(cold["first chart"]) if cold.get("first chart") else math.nan
    text = "\n".join(
        [
            f"## {HEADING}",
            "",
            f"Run {_benchkit.today()}: `{command}`",
            "",
            f"One experiment of {args.trials:,} Succeeded trials (three parameters, a"
            " three-step observation log each) in a SQLite file; `tuner dashboard`'s app on"
            " uvicorn at 127.0.0.1:0 in the benchmark's process; Debian's headless Chromium"
            " (Playwright) opens `/experiments/NAME`. **cold**: a new server (no chart cached),"
            " from navigation start; **warm**: the same page reloaded (charts cached for the"
            " unchanged experiment, the table read again). Median seconds over the repetitions."
            " The API rows time the two requests behind the first chart with urllib, each on a"
            " new server.",
            "",
            _benchkit.table(
                ["measure", "trials", "reps", "cold s", "warm s"], rows, numeric_from=1
            ),
            "",
            "Machine: " + _benchkit.machine_notes(),
            "",
            f"Reading: the first chart of a {args.trials:,}-trial experiment is on screen"
            f" {first:.1f} s after navigation on a cold server"
            if not math.isnan(first)
            else "Reading: no browser run (Chromium missing or --no-browser).",
            "",
        ]
    )
    print(text)
    if not args.no_write:
        _benchkit.write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
