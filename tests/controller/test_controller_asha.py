"""ASHA end to end: `tuner run` (and `Experiment.run()`) with ``earlyStopping: asha`` stops
exactly the trials Optuna's SuccessiveHalvingPruner prunes for the same learning curves,
whether the trials report on stdout, in a File, or with ``tuner.report_metrics(step=...)``.

The trials run one at a time in a fixed order (grid over a categorical list), so ASHA's
decisions do not depend on timing; the expected ones are computed here by driving Optuna's
pruner directly. A trial the test expects to be stopped waits 30 s after the report
that gets it stopped, so a missed stop shows as a succeeded trial, never as a race; the
others pause at each rung, so that a wrong stop has time to happen.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import support

from tuner import Double, Experiment, InvalidExperimentError
from tuner.store import Store, TrialStatus

MIN_RESOURCE, REDUCTION_FACTOR, MAX_RESOURCE = 1, 2, 8
ASHA = {
    "algorithmName": "asha",
    "algorithmSettings": [
        {"name": "min_resource", "value": str(MIN_RESOURCE)},
        {"name": "reduction_factor", "value": str(REDUCTION_FACTOR)},
        {"name": "max_resource", "value": str(MAX_RESOURCE)},
    ],
}
STEPS = range(10)

# Loss by step, in the order the trials run. With rungs at steps 1, 2 and 4 (8 is
# max_resource): "b" loses at rung 1, "d" passes rung 1 and loses at rung 2, "e" loses at
# rung 4, and "f", which would lose at step 8, finishes because step 8 is not a rung.
CURVES: dict[str, dict[int, float]] = {
    "a": dict.fromkeys(STEPS, 1.0),
    "b": dict.fromkeys(STEPS, 2.0),
    "c": dict.fromkeys(STEPS, 0.5),
    "d": {0: 3.0, 1: 0.9, 2: 0.8, 3: 0.8} | dict.fromkeys(range(4, 10), 2.0),
    "e": {0: 0.7, 1: 0.7, 2: 0.7, 3: 0.7} | dict.fromkeys(range(4, 10), 0.6),
    "f": dict.fromkeys(range(8), 0.6) | {8: 5.0, 9: 5.0},
}

TRIAL = r"""
import json, os, sys, time
curve, mode = sys.argv[1], sys.argv[2]
CURVES, HOLD = (json.load(open(name)) for name in ("curves.json", "hold.json"))
RUNGS = (1, 2, 4)
if mode == "push":
    import tuner
for step, loss in sorted((int(s), v) for s, v in CURVES[curve].items()):
    if mode == "push":
        tuner.report_metrics({"loss": loss}, step=step)
    elif mode == "file":
        with open(os.environ["TUNER_METRICS_FILE"], "a") as f:
            f.write(f"loss={loss}\n")
    else:
        print(f"epoch {step}: loss={loss}", flush=True)
    if HOLD.get(curve) == step:
        time.sleep(30)  # ASHA should stop this trial now
    elif step in RUNGS:
        time.sleep(0.3)  # time enough for a wrong stop to show
"""


def reported_steps(mode: str) -> list[int]:
    """Push reports only the even steps with their step numbers: ASHA must go by step, not by
    the count of reports; stdout and File number their reports 0, 1, 2..."""
    return [s for s in STEPS if s % 2 == 0] if mode == "push" else list(STEPS)


def optuna_stops(steps: list[int]) -> dict[str, int]:
    """Curve -> the step at which Optuna's SuccessiveHalvingPruner prunes it, for trials run
    one after another reporting ``steps`` (rungs stop at max_resource: no check from there)."""
    pruner = optuna.pruners.SuccessiveHalvingPruner(
        min_resource=MIN_RESOURCE, reduction_factor=REDUCTION_FACTOR, min_early_stopping_rate=0
    )
    study = optuna.create_study(direction="minimize", pruner=pruner)
    stops = {}
    for name, curve in CURVES.items():
        trial = study.ask()
        for step in steps:
            trial.report(curve[step], step)
            if step < MAX_RESOURCE and trial.should_prune():
                stops[name] = step
                break
        state = optuna.trial.TrialState.PRUNED if name in stops else None
        study.tell(trial, None if name in stops else curve[steps[-1]], state=state)
    return stops


def files(mode: str, hold: dict[str, int]) -> dict[str, str]:
    """The trial script and what it reads: the curves at the steps ``mode`` reports, and
    where to wait for the stop (``hold``: curve -> step)."""
    curves = {n: {s: c[s] for s in reported_steps(mode)} for n, c in CURVES.items()}
    return {"trial.py": TRIAL, "curves.json": json.dumps(curves), "hold.json": json.dumps(hold)}


def document(name: str, mode: str) -> dict[str, Any]:
    collector: dict[str, Any] = {"collector": {"kind": "StdOut"}}
    if mode == "push":
        collector = {"collector": {"kind": "Push"}}
    elif mode == "file":
        collector = {
            "collector": {"kind": "File"},
            "source": {"fileSystemPath": {"kind": "File", "path": "/var/log/katib/m.log"}},
        }
    return support.experiment_document(
        name,
        command=["python3", "trial.py", "${trialParameters.curve}", mode],
        parameters=[
            {"name": "curve", "parameterType": "categorical", "feasibleSpace": {"list": [*CURVES]}}
        ],
        algorithm="grid",
        parallel=1,
        max_trials=len(CURVES),
        earlyStopping=ASHA,
        metricsCollectorSpec=collector,
    )


def statuses(db: Path, experiment: str) -> dict[str, tuple[TrialStatus, str]]:
    with Store.open(f"sqlite:///{db}") as store:
        return {
            t.parameters["curve"]: (t.status, t.message or "")
            for t in store.list_trials(experiment)
        }


def test_optuna_prunes_at_each_rung_for_these_curves() -> None:
    # The curves exercise every rung, and max_resource (f would be pruned at step 8).
    assert optuna_stops(list(STEPS)) == {"b": 1, "d": 2, "e": 4}
    assert optuna_stops(reported_steps("push")) == {"b": 2, "d": 2, "e": 4}


@pytest.mark.parametrize("mode", ["stdout", "file", "push"])
def test_asha_stops_exactly_the_trials_optunas_successive_halving_prunes(
    tmp_path: Path, mode: str
) -> None:
    expected = optuna_stops(reported_steps(mode))

    done = support.tuner_run(tmp_path, document("asha", mode), files(mode, expected))

    assert done.returncode == 0, done.stderr
    found = statuses(tmp_path / "tuner.db", "asha")
    stopped = {c for c, (status, _) in found.items() if status is TrialStatus.EARLY_STOPPED}
    succeeded = {c for c, (status, _) in found.items() if status is TrialStatus.SUCCEEDED}
    assert stopped == set(expected)
    assert succeeded == set(CURVES) - set(expected)
    for curve, step in expected.items():
        assert f"at step {step} " in found[curve][1], found[curve][1]
        assert "(asha, reduction_factor 2)" in found[curve][1]


def test_bad_asha_settings_are_refused_naming_the_setting(tmp_path: Path) -> None:
    spec = document("refused", "stdout")
    spec["spec"]["earlyStopping"] = {
        "algorithmName": "asha",
        "algorithmSettings": [
            {"name": "min_resource", "value": "4"},
            {"name": "max_resource", "value": "4"},
        ],
    }

    done = support.tuner_run(tmp_path, spec, files("stdout", {}))

    assert done.returncode == 2, done.stderr
    assert "'max_resource': '4' is not greater than min_resource 4" in done.stderr


def run_python_api(tmp_path: Path, settings: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """`Experiment(..., early_stopping="asha", early_stopping_settings=...).run()` in a
    subprocess over the stdout curves; prints the result's trial statuses."""
    expected = optuna_stops(list(STEPS))
    script = f"""
from tuner import Categorical, Experiment
result = Experiment(
    "api",
    parameters={{"curve": Categorical({[*CURVES]!r})}},
    objective="loss",
    goal_type="minimize",
    algorithm="grid",
    max_trials={len(CURVES)},
    parallel_trials=1,
    early_stopping="asha",
    early_stopping_settings={settings!r},
    command=["python", "trial.py", "{{curve}}", "stdout"],
).run(db="sqlite:///api.db", progress=False, poll_interval=0.05)
print(result.status)
"""
    for name, text in files("stdout", expected).items():
        (tmp_path / name).write_text(text)
    (tmp_path / "api.py").write_text(script)
    return subprocess.run(
        [sys.executable, "api.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=support.HANG_GUARD_SECONDS,
    )


def test_the_python_api_runs_asha_with_its_settings(tmp_path: Path) -> None:
    settings = {
        "min_resource": MIN_RESOURCE,
        "reduction_factor": REDUCTION_FACTOR,
        "max_resource": MAX_RESOURCE,
    }

    done = run_python_api(tmp_path, settings)

    assert done.returncode == 0, done.stderr
    found = statuses(tmp_path / "api.db", "api")
    stopped = {c for c, (status, _) in found.items() if status is TrialStatus.EARLY_STOPPED}
    assert stopped == set(optuna_stops(list(STEPS)))


def test_the_python_api_refuses_bad_asha_settings_before_any_trial(tmp_path: Path) -> None:
    experiment = Experiment(
        "bad",
        parameters={"lr": Double(0.1, 1.0)},
        objective="loss",
        goal_type="minimize",
        command=["python", "-c", "print('loss=1')", "{lr}"],
        max_trials=3,
        early_stopping="asha",
        early_stopping_settings={"reduction_factor": 1},
    )

    with pytest.raises(InvalidExperimentError) as caught:
        experiment.run(db=f"sqlite:///{tmp_path / 'bad.db'}", progress=False)

    assert "'reduction_factor': '1' is not an integer >= 2" in str(caught.value)
    with Store.open(f"sqlite:///{tmp_path / 'bad.db'}") as store:
        assert list(store.list_experiments()) == []  # nothing was written
