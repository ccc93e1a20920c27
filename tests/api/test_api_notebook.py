"""The Python API as a notebook uses it: a script that runs experiments twice in one process
and then once more in a fresh one, with a closure over a numpy array as the objective.
Without ``db`` nothing stays on disk and runs never meet; with ``db`` a run resumes, a
raised ``max_trials`` continues a finished experiment, and a changed function is refused
in Python words."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import HANG_GUARD_SECONDS

import tuner
from tuner import Double, Experiment, TrialResult
from tuner.store import TrialStatus

NOTEBOOK = """
import json, sys
import numpy as np
import tuner
from tuner import Double, Experiment

db, address, phase = sys.argv[1], sys.argv[2], sys.argv[3]
data = np.linspace(0.0, 1.0, 101)  # captured by the objective: it travels pickled
finished = []


def make_objective(shift):
    def objective(params):
        return float(np.mean((data - params["x"] - shift) ** 2))
    return objective


def experiment(max_trials, shift=0.0):
    return Experiment(
        "notebook", parameters={"x": Double(0.0, 1.0)}, objective="loss",
        goal_type="minimize", algorithm="random", algorithm_settings={"random_state": 7},
        max_trials=max_trials, objective_fn=make_objective(shift),
    )


def run(max_trials, shift=0.0, **options):
    result = experiment(max_trials, shift).run(
        progress=False, suggestion_address=address,
        callbacks=[lambda trial: finished.append(trial.name)], **options
    )
    return {
        "trials": [t.name for t in result.trials],
        "statuses": [t.status.value for t in result.trials],
        "objectives": [t.objective for t in result.trials],
        "xs": [t.parameters["x"] for t in result.trials],
        "parallel": result.document["spec"]["parallelTrialCount"]
        if "spec" in result.document else None,
    }


def refusal(max_trials, shift):
    try:
        run(max_trials, shift, db=db)
    except tuner.InvalidExperimentError as e:
        return str(e)
    return None


out = {}
if phase == "first":
    out["memory"] = [run(2), run(2)]  # twice in one process, nothing kept
    out["kept"] = run(2, db=db)
    out["again"] = run(2, db=db)  # finished and unchanged: the stored result
    out["raised"] = run(4, db=db)  # max_trials raised: continues
else:
    out["again"] = run(4, db=db)
    out["raised"] = run(5, db=db)
out["changed"] = refusal(6, shift=0.5)
out["callbacks"] = finished
print("RESULT " + json.dumps(out))
"""


def run_notebook(work: Path, db: str, address: str, phase: str) -> tuple[dict[str, Any], str]:
    """The script in a new Python process in ``work``, with its own temporary directory."""
    env = {**os.environ, "TMPDIR": str(work.parent / "tmp")}
    done = subprocess.run(
        [sys.executable, str(work.parent / "notebook.py"), db, address, phase],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (line,) = (x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT ")), done.stderr


def test_a_notebook_session_then_a_fresh_one(tmp_path: Path, suggestion_address: str) -> None:
    (tmp_path / "notebook.py").write_text(NOTEBOOK)
    work, scratch = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    scratch.mkdir()
    db = f"sqlite:///{tmp_path / 'kept.db'}"

    first, stderr = run_notebook(work, db, suggestion_address, "first")

    # db=None: two runs of the same name in one process, each a fresh experiment of its own
    # (closure over a numpy array, pickled), and nothing left behind on disk.
    one, two = first["memory"]
    assert one["statuses"] == two["statuses"] == ["Succeeded"] * 2
    assert set(one["trials"]).isdisjoint(two["trials"])
    for result in (one, two):
        for x, loss in zip(result["xs"], result["objectives"], strict=True):
            assert loss == pytest.approx(_loss(x, 0.0))
    assert list(scratch.iterdir()) == []  # the scratch stores are gone with the process

    # db=...: kept, then returned as stored (with a notice), then continued to 4 trials.
    kept, again, raised = first["kept"], first["again"], first["raised"]
    assert kept["statuses"] == ["Succeeded"] * 2
    assert again == kept
    assert "already finished" in stderr and "Raise max_trials" in stderr
    assert raised["trials"][:2] == kept["trials"] and len(raised["trials"]) == 4
    assert raised["statuses"] == ["Succeeded"] * 4
    # A changed function (the captured shift) is refused in one line with the way out.
    changed = first["changed"]
    assert changed is not None and "\n" not in changed
    assert changed.startswith("objective_fn: experiment 'notebook' in sqlite:///")
    assert "tuner.delete('notebook', db=...)" in changed
    # Callbacks: each trial once, as it finished; the stored result calls none.
    memory_trials = one["trials"] + two["trials"]
    expected = memory_trials + kept["trials"] + raised["trials"][2:]
    assert sorted(first["callbacks"]) == sorted(expected)
    # In the working directory only the kept experiment's run directory (db=... runs).
    assert [p.name for p in work.iterdir()] == ["runs"]
    assert {p.name for p in (work / "runs").iterdir()} == {"objectives", *raised["trials"]}

    # A fresh process: the same experiment resumes from the database.
    fresh, stderr = run_notebook(work, db, suggestion_address, "fresh")
    assert fresh["again"] == raised
    assert fresh["raised"]["trials"][:4] == raised["trials"]
    assert fresh["raised"]["statuses"] == ["Succeeded"] * 5
    assert fresh["callbacks"] == fresh["raised"]["trials"][4:]  # one new trial
    assert fresh["changed"] is not None and fresh["changed"].startswith("objective_fn: ")


def _loss(x: float, shift: float) -> float:
    data = [i / 100 for i in range(101)]
    return sum((d - x - shift) ** 2 for d in data) / len(data)


def test_a_function_that_reports_and_returns_is_stored_once(
    tmp_path: Path, suggestion_address: str
) -> None:
    def reports_and_returns(params: dict[str, Any]) -> float:
        import tuner

        loss = params["x"] * 2
        tuner.report_metrics({"loss": loss})
        return loss

    db = f"sqlite:///{tmp_path / 'once.db'}"
    result = Experiment(
        "once",
        parameters={"x": Double(0.0, 1.0)},
        objective="loss",
        goal_type="minimize",
        max_trials=1,
        objective_fn=reports_and_returns,
        metrics_collector="Push",
    ).run(db=db, progress=False, run_dir=tmp_path / "runs", suggestion_address=suggestion_address)
    (trial,) = result.trials
    assert trial.status is TrialStatus.SUCCEEDED
    from tuner.store import Store

    with Store.open(db) as store:
        assert len(store.get_observations(trial.name)) == 1


def test_callbacks_get_trial_results_and_a_failing_one_does_not_stop_the_run(
    tmp_path: Path, suggestion_address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[TrialResult] = []

    def broken(trial: TrialResult) -> None:
        raise RuntimeError("callback bug")

    result = Experiment(
        "calls",
        parameters={"x": Double(0.0, 1.0)},
        objective="loss",
        goal_type="minimize",
        max_trials=3,
        objective_fn=lambda params: params["x"] ** 2,
    ).run(progress=False, suggestion_address=suggestion_address, callbacks=[broken, seen.append])
    assert sorted(t.name for t in seen) == sorted(t.name for t in result.trials)
    assert all(t.objective == pytest.approx(t.parameters["x"] ** 2) for t in seen)  # type: ignore[operator]
    assert capsys.readouterr().err.count("RuntimeError: callback bug") == 3


def test_result_shows_as_html_and_json_text(suggestion_address: str) -> None:
    result = Experiment(
        "shown",
        parameters={"x": Double(0.0, 1.0)},
        objective="loss",
        goal_type="minimize",
        max_trials=2,
        objective_fn=lambda params: params["x"],
    ).run(progress=False, suggestion_address=suggestion_address)
    page = result._repr_html_()
    assert page.startswith('<div class="tuner-result"><p><b>shown</b>: Succeeded')
    assert all(f"<td>{t.name}</td>" in page for t in result.trials)
    assert isinstance(result.to_json(), str)
    assert json.loads(result.to_json()) == result.to_dict()
    frame = result.to_dataframe()
    assert list(frame["name"]) == [t.name for t in result.trials]


def test_a_function_that_cannot_travel_as_source_is_refused_for_kubernetes() -> None:
    experiment = Experiment(
        "remote",
        parameters={"x": Double(0.0, 1.0)},
        objective="loss",
        goal_type="minimize",
        max_trials=1,
        objective_fn=lambda params: params["x"],
    )
    with pytest.raises(tuner.spec.SpecError, match="executor='kubernetes'"):
        experiment.run(executor="kubernetes", progress=False)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"algorithm": "grid"}, "parameter 'x': grid needs step for a double parameter"),
        ({"algorithm_settings": {"random_state": "abc"}}, "'random_state': 'abc' is not"),
    ],
)
def test_refusals_before_running_speak_python(
    arguments: dict[str, Any], message: str, suggestion_address: str
) -> None:
    experiment = Experiment(
        "refused",
        parameters={"x": Double(0.0, 1.0)},
        objective="loss",
        goal_type="minimize",
        max_trials=1,
        objective_fn=lambda params: params["x"],
        **arguments,
    )
    with pytest.raises(tuner.InvalidExperimentError) as caught:
        experiment.run(progress=False, suggestion_address=suggestion_address)
    assert message in str(caught.value)
    assert "spec." not in str(caught.value) and "feasibleSpace" not in str(caught.value)
