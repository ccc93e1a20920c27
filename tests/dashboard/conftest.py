"""Fixtures of the dashboard tests: stores filled through the public store API, and the
dashboard served by a real uvicorn on a loopback port 0 (real HTTP)."""

from __future__ import annotations

import math
import threading
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import support
from support.databases import server_url

pytest.importorskip("starlette", reason="the dashboard extra is not installed")

from tuner.store import MetricSummary, Observation, Store, TrialStatus  # noqa: E402

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def spec(metric: str = "loss", goal: str = "minimize", extra: tuple[str, ...] = ()) -> dict:
    return support.experiment_document(
        command=["echo", *(f"${{trialParameters.{n}}}" for n in ("lr", "layers", "opt"))],
        parameters=[
            support.double_parameter("lr", 0.001, 1),
            support.int_parameter("layers", 1, 8),
            {
                "name": "opt",
                "parameterType": "categorical",
                "feasibleSpace": {"list": ["sgd", "adam"]},
            },
        ],
        parallel=2,
        max_trials=100,
        objective={
            "type": goal,
            "objectiveMetricName": metric,
            "additionalMetricNames": list(extra),
        },
    )["spec"]


def loss(i: int) -> float:
    return 1.0 / (1 + i) + 0.1 * math.sin(i)


def add_trials(
    store: Store,
    experiment: str,
    count: int,
    *,
    start: int = 0,
    observations: bool = True,
    status: TrialStatus = TrialStatus.SUCCEEDED,
    extra_metric: str | None = None,
    prefix: str | None = None,
) -> list[str]:
    """`count` finished trials with parameters, objective, metrics and (optionally) a
    three-step observation log of the objective."""
    prefix = prefix or f"{experiment}-t"
    names = []
    batch = []
    for i in range(start, start + count):
        name = f"{prefix}{i}"
        names.append(name)
        params = {
            "lr": f"{0.001 + (i * 0.37) % 0.99:.4f}",
            "layers": str(1 + i % 8),
            "opt": "adam" if i % 3 else "sgd",
        }
        batch.append((name, params))
    store.create_trials(experiment, batch, status=TrialStatus.RUNNING)
    for offset, name in enumerate(names):
        i = start + offset
        value = loss(i)
        began = T0 + timedelta(seconds=10 * i)
        store.update_trial(name, started_at=began)
        if observations:
            store.add_observations(
                name,
                [
                    Observation(
                        name,
                        "loss",
                        value * (3 - step),
                        step=step,
                        timestamp=began + timedelta(seconds=step + 1),
                    )
                    for step in range(3)
                ],
            )
        summary = {"loss": MetricSummary(value, 3 * value, value)}
        if extra_metric is not None:
            other = 1.0 - value + 0.05 * math.cos(3 * i)
            summary[extra_metric] = MetricSummary(other, other, other)
        if status.is_finished():
            store.finish_trial(
                name,
                status,
                objective_value=value if status.counts_for_best() else None,
                metrics_summary=summary,
                exit_code=0,
                message="done",
                completed_at=began + timedelta(seconds=8),
            )
    return names


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as s:
        yield s


class Served:
    """A running dashboard: `url` ends without a slash; `get(path)` returns (status, body)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str) -> tuple[int, str, dict[str, str]]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=60) as r:
                return r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), dict(e.headers)


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Start the dashboard of a store on 127.0.0.1:0 in a thread; stopped after the test."""
    from tuner import dashboard

    running: list[tuple[Any, threading.Thread, Any]] = []

    def start(store: Store, **options: Any) -> Served:
        sock = dashboard.bind(dashboard.Address("127.0.0.1", 0))
        server = dashboard.server(store, **options)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        running.append((server, thread, sock))
        served = Served(dashboard.url_of(sock).rstrip("/"))
        # The socket listens already: a request waits in the backlog until uvicorn accepts.
        assert served.get("/healthz")[0] == 200
        return served

    yield start
    for server, thread, sock in running:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _drop_store_tables(url: str) -> None:
    from sqlalchemy import create_engine, text

    from tuner.store._schema import VERSION_TABLE

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for table in ("observations", "trials", "experiments", VERSION_TABLE):
                connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
    finally:
        engine.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend: a new SQLite file, or a configured server's (whose
    store tables are dropped before and after: each test process has its database to itself,
    see support.databases)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tuner.db'}"
        return
    url = server_url(request.param)
    _drop_store_tables(url)
    yield url
    _drop_store_tables(url)


@pytest.fixture
def make() -> Any:
    """The data helpers of this module (importlib mode: tests share code as fixtures)."""
    from types import SimpleNamespace

    return SimpleNamespace(spec=spec, add_trials=add_trials, loss=loss, T0=T0)
