"""The cap on stored reports per metric, end to end below the loop: the experiment's
annotation and early stopping make the cap, and a real collector streams a trial's log into
a real SQLite store through it. A capped trial reports the objective an uncapped one does,
early stopping decides the same, and a collector resumed from the stored checkpoint (a
controller restarted mid-log) keeps the same points as an uninterrupted one."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import support

from suggestion.earlystopping import Asha, MedianStop, Report
from tuner.controller._collection import (
    EARLY_STOPPING_READS,
    collect_into_store,
    observation_cap,
)
from tuner.controller._rules import StoppingRule
from tuner.metrics import (
    CollectorCheckpoint,
    CollectorConfig,
    ObservationCap,
    Rungs,
    StdOutCollector,
)
from tuner.space import Direction
from tuner.spec import MAX_OBSERVATIONS_ANNOTATION, Experiment
from tuner.store import Store

LINES = 5_000
T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def experiment(cap: str | None = None, early: dict[str, Any] | None = None) -> Experiment:
    doc = support.experiment_document(
        "exp",
        command=["t", "${trialParameters.x}"],
        parameters=[support.int_parameter("x", 0, 9)],
    )
    doc["spec"]["objective"]["additionalMetricNames"] = ["acc"]
    if cap is not None:
        doc["metadata"]["annotations"] = {MAX_OBSERVATIONS_ANNOTATION: cap}
    if early is not None:
        doc["spec"]["earlyStopping"] = early
    return Experiment.model_validate(doc)


def early(name: str, **settings: str) -> dict[str, Any]:
    return {
        "algorithmName": name,
        "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()],
    }


def test_without_the_annotation_every_report_is_stored() -> None:
    assert observation_cap(experiment()) is None


def test_the_cap_keeps_what_the_experiments_early_stopping_reads() -> None:
    assert observation_cap(experiment("1000")) == ObservationCap(1000)
    assert observation_cap(experiment("50", early("medianstop"))) == ObservationCap(50, head=4)
    medianstop = early("medianstop", start_step="12", min_trials_required="2")
    assert observation_cap(experiment("50", medianstop)) == ObservationCap(50, head=12)
    assert observation_cap(experiment("50", early("asha"))) == ObservationCap(50, rungs=Rungs(1, 4))
    asha = early("asha", min_resource="2", reduction_factor="3", max_resource="200")
    assert observation_cap(experiment("50", asha)) == ObservationCap(50, rungs=Rungs(2, 3, 200))
    # An algorithm whose reads tuner does not know: the objective's metrics stay whole.
    assert observation_cap(experiment("50", early("my-rule"))) == ObservationCap(
        50, exempt=frozenset({"loss", "acc"})
    )


@pytest.mark.parametrize("algorithm", [MedianStop, Asha])
def test_the_early_stopping_defaults_kept_are_the_suggestion_servers(algorithm: Any) -> None:
    served = {spec.name: spec.default for spec in algorithm.settings_spec}
    kept = EARLY_STOPPING_READS[algorithm.name]
    assert {name: served[name] for name in kept} == kept


def write_log(path: Path, seed: int) -> list[float]:
    rng = random.Random(seed)
    losses = [rng.uniform(0, 10) / (1 + i / 1000) for i in range(LINES)]
    path.write_text("".join(f"loss={v!r}\nacc={1 - v / 10!r}\n" for v in losses))
    return losses


class Trials:
    """A store with one experiment and trials whose logs are files in ``root``."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.store = Store.open(f"sqlite:///{root / f'{name}.db'}")
        self.store.create_experiment("exp", "default", experiment().to_dict()["spec"])

    def collect(
        self,
        trial: str,
        log: Path,
        cap: ObservationCap | None,
        *,
        stop_after: int | None = None,
        batch_bytes: int = 64 * 1024,
    ) -> None:
        """Collect ``log`` into the trial; ``stop_after`` bytes: stop there, as a controller
        killed mid-log; called again it resumes from the stored checkpoint."""
        saved = self.store.collector_checkpoint(trial)
        checkpoint = None if saved is None else CollectorCheckpoint.from_dict(saved)
        config = CollectorConfig(["loss", "acc"], log_path=log)
        with StdOutCollector(config, checkpoint) as collector:
            collect_into_store(
                self.store,
                trial,
                collector,
                final=stop_after is None,
                max_bytes=stop_after,
                batch_bytes=batch_bytes,
                cap=cap,
            )

    def rows(self, trial: str, metric: str = "loss") -> list[tuple[int | None, float]]:
        return [(o.step, o.value) for o in self.store.get_observations(trial, metric)]


@pytest.fixture
def logs(tmp_path: Path) -> dict[str, tuple[Path, list[float]]]:
    out = {}
    for i in range(4):
        path = tmp_path / f"exp-{i}.log"
        out[f"exp-{i}"] = (path, write_log(path, seed=i))
    return out


def stores(tmp_path: Path, logs: dict[str, Any]) -> tuple[Trials, Trials]:
    full, capped = Trials(tmp_path, "full"), Trials(tmp_path, "capped")
    for t in (full, capped):
        t.store.create_trials("exp", [(name, {"x": "1"}) for name in logs])
    return full, capped


def test_a_capped_trial_reports_the_objective_an_uncapped_one_does(
    tmp_path: Path, logs: dict[str, tuple[Path, list[float]]]
) -> None:
    full, capped = stores(tmp_path, logs)
    cap = ObservationCap(1000)
    for trial, (log, _) in logs.items():
        full.collect(trial, log, None)
        capped.collect(trial, log, cap)

    for trial, (_, losses) in logs.items():
        assert len(full.rows(trial)) == LINES
        assert 500 <= len(capped.rows(trial)) <= 1003
        assert len(capped.rows(trial, "acc")) <= 1003
        summary = capped.store.observation_summary(trial, ["loss", "acc"])
        assert summary == full.store.observation_summary(trial, ["loss", "acc"])
        assert (summary["loss"].min, summary["loss"].latest) == (min(losses), losses[-1])


def test_a_collector_resumed_mid_log_keeps_what_an_uninterrupted_one_keeps(
    tmp_path: Path, logs: dict[str, tuple[Path, list[float]]]
) -> None:
    once, resumed = stores(tmp_path, logs)
    cap = ObservationCap(300, head=4, rungs=Rungs(1, 3))
    log, _ = logs["exp-0"]

    once.collect("exp-0", log, cap, batch_bytes=64 * 1024)
    resumed.collect("exp-0", log, cap, stop_after=log.stat().st_size // 3, batch_bytes=5000)
    assert 0 < len(resumed.rows("exp-0")) <= 300 + 4 + 10  # capped while the log grows
    resumed.collect("exp-0", log, cap, stop_after=log.stat().st_size // 4, batch_bytes=7000)
    resumed.collect("exp-0", log, cap, batch_bytes=3000)  # the trial ended

    for metric in ("loss", "acc"):
        assert resumed.rows("exp-0", metric) == once.rows("exp-0", metric)
    # The same checkpoint, but for the read times of the latest reports.
    assert without_times(resumed.store.collector_checkpoint("exp-0")) == without_times(
        once.store.collector_checkpoint("exp-0")
    )


def without_times(checkpoint: dict[str, Any] | None) -> dict[str, Any]:
    assert checkpoint is not None
    for state in checkpoint["cap"].values():
        state["latest"] = state["latest"][0]
    return checkpoint


def curves(trials: Trials, names: list[str]) -> dict[str, list[Report]]:
    # Each report's time from its step (the stores were filled at different times).
    return {
        name: [
            Report(step, value, T0 + timedelta(seconds=step, microseconds=i))
            for step, value in trials.rows(name)
            if step is not None
        ]
        for i, name in enumerate(names)
    }


def test_early_stopping_decides_on_a_capped_log_as_on_the_whole_log(
    tmp_path: Path, logs: dict[str, tuple[Path, list[float]]]
) -> None:
    full, capped = stores(tmp_path, logs)
    asha_settings = Asha.parse([("min_resource", "2"), ("reduction_factor", "3")])
    cap = observation_cap(experiment("40", early("asha", min_resource="2", reduction_factor="3")))
    assert cap is not None
    for trial, (log, _) in logs.items():
        full.collect(trial, log, None)
        capped.collect(trial, log, cap)
    names = sorted(logs)

    whole = Asha.verdicts(asha_settings, Direction.MINIMIZE, curves(full, names))
    thinned = Asha.verdicts(asha_settings, Direction.MINIMIZE, curves(capped, names))
    assert whole  # the logs make asha stop some trials: the comparison means something
    assert thinned == whole


def test_medianstop_decides_on_a_capped_log_as_on_the_whole_log(
    tmp_path: Path, logs: dict[str, tuple[Path, list[float]]]
) -> None:
    full, capped = stores(tmp_path, logs)
    cap = observation_cap(experiment("40", early("medianstop", start_step="5")))
    assert cap is not None
    for trial, (log, _) in logs.items():
        full.collect(trial, log, None)
        capped.collect(trial, log, cap)
    names = sorted(logs)

    # It reads each finished trial's first start_step values, and each running trial's
    # count of values and latest one.
    whole = {name: [v for _, v in full.rows(name)] for name in names}
    thinned = {name: [v for _, v in capped.rows(name)] for name in names}
    assert all(len(thinned[n]) < len(whole[n]) for n in names)
    settings = MedianStop.parse([("start_step", "5")])
    rules = MedianStop.rules(settings, Direction.MINIMIZE, "loss", whole)
    assert rules
    assert MedianStop.rules(settings, Direction.MINIMIZE, "loss", thinned) == rules
    # As the controller applies the rule to the running trials.
    (rule,) = (
        StoppingRule(r.metric, r.value, "below" if r.comparison.value == "less" else "above", 5)
        for r in rules
    )
    assert [rule.broken_by(thinned[n]) for n in names] == [rule.broken_by(whole[n]) for n in names]
    # Before the cap thins anything, the first reports are the whole log.
    assert all(thinned[n][:5] == whole[n][:5] for n in names)
