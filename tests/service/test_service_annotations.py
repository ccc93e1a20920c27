"""Annotations in service mode: `tuner submit` stores the Experiment's annotations with its
spec, and the `tuner controller` subprocess drives the stored experiment by them (the cap on
stored reports per metric), including after a resubmission that changes them."""

from __future__ import annotations

from typing import Any

import pytest
import support
from support import wait_until

from tuner.spec import MAX_OBSERVATIONS_ANNOTATION
from tuner.store import ExperimentStatus, TrialStatus

REPORTS = 200
# Prints REPORTS losses, the last one the trial's x; --sleep makes a trial last a while.
CHATTY_TRIAL = r"""
import sys, time
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
time.sleep(float(opts["sleep"]))
for i in range(REPORTS):
    print(f"loss={REPORTS - i}", flush=True)
print(f"loss={opts['x']}", flush=True)
""".replace("REPORTS", str(REPORTS))


def chatty(bench, name: str, cap: str | None, *, sleep: float = 0.0, **spec: Any) -> dict:  # noqa: ANN001
    """An Experiment whose trials report the objective REPORTS + 1 times, capped by ``cap``."""
    script = bench.root / "chatty.py"
    script.write_text(CHATTY_TRIAL)
    document = support.experiment_document(
        name,
        command=["python3", str(script), "--x=${trialParameters.x}", f"--sleep={sleep}"],
        parameters=[support.int_parameter("x", 0, 1000000)],
        image="python",
        **spec,
    )
    document["metadata"]["annotations"] = {"team": "vision"}
    if cap is not None:
        document["metadata"]["annotations"][MAX_OBSERVATIONS_ANNOTATION] = cap
    return document


def stored_reports(bench, name: str) -> dict[str, int]:  # noqa: ANN001 - the conftest Bench
    with bench.store() as store:
        return {t.name: len(store.get_observations(t.name)) for t in store.list_trials(name)}


def succeeded(bench, name: str) -> bool:  # noqa: ANN001
    with bench.store() as store:
        return store.get_experiment(name).status is ExperimentStatus.SUCCEEDED


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_the_driven_experiment_honours_the_submitted_observation_cap(
    bench, request: pytest.FixtureRequest, backend: str
) -> None:
    if backend == "postgresql":
        bench.db_url = request.getfixturevalue("postgres_url")
    capped = chatty(bench, "capped", "10", parallel=2, max_trials=2)
    whole = chatty(bench, "whole", None, parallel=2, max_trials=2)
    assert bench.submit(bench.write("e.yaml", capped, whole)) == 0
    with bench.store() as store:
        record = store.get_experiment("capped")
        assert record.annotations == {"team": "vision", MAX_OBSERVATIONS_ANNOTATION: "10"}
        assert record.experiment.max_observations_per_metric == 10

    controller = bench.start_controller()
    wait_until(lambda: succeeded(bench, "capped") and succeeded(bench, "whole"), "both to succeed")

    capped_reports = stored_reports(bench, "capped")
    assert len(capped_reports) == 2
    assert all(0 < n <= 20 for n in capped_reports.values()), capped_reports
    # The same trials without the annotation store every report: the cap made the difference.
    assert set(stored_reports(bench, "whole").values()) == {REPORTS + 1}
    with bench.store() as store:
        # The objective (the smallest report, as minimized) is the uncapped one.
        for trial in store.list_trials("capped"):
            assert trial.objective_value == min(1.0, float(trial.parameters["x"]))
    assert controller.terminate()[0] == 0


def test_a_resubmitted_cap_reaches_the_controller_driving_the_experiment(bench, capsys) -> None:
    first = chatty(bench, "alpha", None, sleep=1.5, parallel=1, max_trials=3)
    assert bench.submit(bench.write("a.yaml", first)) == 0
    controller = bench.start_controller()

    def running() -> bool:
        with bench.store() as store:
            return bool(store.list_trials("alpha", [TrialStatus.RUNNING]))

    wait_until(running, "the first trial to run")
    capped = chatty(bench, "alpha", "10", sleep=1.5, parallel=1, max_trials=3)
    assert bench.submit(bench.write("b.yaml", capped)) == 0
    out = capsys.readouterr().out
    assert f"updated: metadata.annotations[{MAX_OBSERVATIONS_ANNOTATION!r}] (unset) -> '10'" in out

    wait_until(lambda: succeeded(bench, "alpha"), "alpha to succeed")
    assert "stored annotations changed" in controller.log.read_text()
    with bench.store() as store:
        trials = store.list_trials("alpha")
        assert store.get_experiment("alpha").annotations[MAX_OBSERVATIONS_ANNOTATION] == "10"
    # Trials launched after the resubmission store at most about the cap.
    assert len(trials) == 3
    assert min(stored_reports(bench, "alpha").values()) <= 20
    assert controller.terminate()[0] == 0
