"""The dashboard over real HTTP (uvicorn on port 0) and a real SQLite file: pages, the JSON
API the pages draw from, the charts, the download, and what must never be served."""

from __future__ import annotations

import csv
import io
import json
import urllib.parse

import pytest

from tuner.dashboard._figures import FIGURES, Figures, Objective
from tuner.store import Observation, TrialStatus


def q(**params: str) -> str:
    return "?" + urllib.parse.urlencode(params)


def test_experiments_list_filters_by_status_and_namespace(make, store, serve):
    store.create_experiment("mnist", "team-a", make.spec())
    store.create_experiment("cifar", "team-b", make.spec(goal="maximize", metric="acc"))
    store.set_experiment_status("cifar", "Running")
    make.add_trials(store, "mnist", 3)
    served = serve(store)

    status, body, _ = served.get("/api/experiments")
    assert status == 200
    listed = json.loads(body)
    by_name = {e["name"]: e for e in listed["experiments"]}
    assert set(by_name) == {"mnist", "cifar"}
    assert by_name["mnist"]["trials"] == {"Succeeded": 3}
    assert by_name["mnist"]["best"] == pytest.approx(
        min(1.0, 0.5841470984807897, 0.4242630760159015)
    )
    assert by_name["cifar"]["status"] == "Running" and by_name["cifar"]["total"] == 0
    assert listed["namespaces"] == ["team-a", "team-b"]

    running = json.loads(served.get("/api/experiments" + q(status="Running"))[1])
    assert [e["name"] for e in running["experiments"]] == ["cifar"]
    team_a = json.loads(served.get("/api/experiments" + q(namespace="team-a"))[1])
    assert [e["name"] for e in team_a["experiments"]] == ["mnist"]
    assert served.get("/api/experiments" + q(status="Nonsense"))[0] == 400


def test_experiment_page_has_the_yaml_and_the_table_every_trial(make, store, serve):
    store.create_experiment("mnist", "default", make.spec())
    names = make.add_trials(store, "mnist", 120, observations=False)
    served = serve(store)

    status, page, headers = served.get("/experiments/mnist")
    assert status == 200 and "objectiveMetricName: loss" in page
    assert "script-src 'self'" in headers["content-security-policy"]
    table = json.loads(served.get("/api/trials" + q(experiment="mnist"))[1])
    assert [r[0] for r in table["rows"]] == names
    assert table["columns"][:3] == ["name", "status", "objective"]
    assert {"params.lr", "params.layers", "params.opt", "metrics.loss"} <= set(table["columns"])
    layers = table["columns"].index("params.layers")
    assert table["rows"][3][layers] == 4  # typed by the search space, not a wire string


def test_unknown_names_are_404(store, serve):
    served = serve(store)
    assert served.get("/experiments/nope")[0] == 404
    assert served.get("/trials/nope")[0] == 404
    assert served.get("/api/trials" + q(experiment="nope"))[0] == 404
    assert served.get("/api/figure" + q(experiment="nope", kind="history"))[0] == 404


@pytest.mark.parametrize("kind", [k for k in FIGURES if k != "pareto"])
def test_each_chart_has_the_trials_data(make, store, serve, kind):
    store.create_experiment("mnist", "default", make.spec())
    make.add_trials(store, "mnist", 12)
    served = serve(store)
    status, body, _ = served.get("/api/figure" + q(experiment="mnist", kind=kind))
    assert status == 200
    answer = json.loads(body)
    assert "figure" in answer, answer
    traces = answer["figure"]["data"]
    points = sum(
        len(t.get("x") or t.get("y") or t.get("dimensions", [{}])[0].get("values", []))
        for t in traces
    )
    assert points > 0, kind


def test_charts_say_why_they_are_empty(make, store, serve):
    store.create_experiment("fresh", "default", make.spec())
    served = serve(store)
    answer = json.loads(served.get("/api/figure" + q(experiment="fresh", kind="history"))[1])
    assert "0 so far" in answer["unavailable"]
    assert served.get("/api/figure" + q(experiment="fresh", kind="bogus"))[0] == 404


def test_charts_follow_new_trials(make, store, serve):
    store.create_experiment("mnist", "default", make.spec())
    make.add_trials(store, "mnist", 3)
    served = serve(store)
    path = "/api/figure" + q(experiment="mnist", kind="history")
    before = json.loads(served.get(path)[1])["figure"]["data"][0]["x"]
    make.add_trials(store, "mnist", 2, start=3)
    after = json.loads(served.get(path)[1])["figure"]["data"][0]["x"]
    assert len(before) == 3 and len(after) == 5


def test_pareto_front_of_two_stored_metrics(make, store, serve):
    # A caller's goals: the Pareto path drawn from two stored metrics of any experiment.
    store.create_experiment("multi", "default", make.spec(extra=("accuracy",)))
    make.add_trials(store, "multi", 20, extra_metric="accuracy", observations=False)
    goals = [Objective("loss", "minimize"), Objective("accuracy", "maximize")]
    served = serve(store, goals=lambda view: goals)
    page = served.get("/experiments/multi")[1]
    assert '"pareto"' in page
    answer = json.loads(served.get("/api/figure" + q(experiment="multi", kind="pareto"))[1])
    traces = answer["figure"]["data"]
    assert sum(len(t.get("x") or []) for t in traces) == 20
    assert answer["figure"]["layout"]["xaxis"]["title"]["text"] == "loss"
    assert answer["figure"]["layout"]["yaxis"]["title"]["text"] == "accuracy"


def test_a_multi_objective_experiment_gets_its_pareto_front_from_its_spec(make, store, serve):
    spec = make.spec()
    spec["objective"]["additionalObjectives"] = [{"metricName": "accuracy", "type": "maximize"}]
    store.create_experiment("multi", "default", spec)
    make.add_trials(store, "multi", 12, extra_metric="accuracy", observations=False)
    served = serve(store)  # no goals given: the dashboard reads the experiment's objectives
    assert 'id="fig-pareto"' in served.get("/experiments/multi")[1]
    answer = json.loads(served.get("/api/figure" + q(experiment="multi", kind="pareto"))[1])
    assert sum(len(t.get("x") or []) for t in answer["figure"]["data"]) == 12
    assert answer["figure"]["layout"]["yaxis"]["title"]["text"] == "accuracy"


def test_single_objective_pages_have_no_pareto_panel(make, store, serve):
    store.create_experiment("mnist", "default", make.spec())
    served = serve(store)
    assert 'id="fig-pareto"' not in served.get("/experiments/mnist")[1]
    assert 'id="fig-history"' in served.get("/experiments/mnist")[1]


def test_early_stopped_trials_are_pruned_on_the_timeline(make, store):
    store.create_experiment("es", "default", make.spec())
    make.add_trials(store, "es", 3)
    make.add_trials(store, "es", 2, start=3, status=TrialStatus.EARLY_STOPPED)
    make.add_trials(store, "es", 1, start=5, status=TrialStatus.FAILED)
    from tuner.dashboard._data import ExperimentView

    view = ExperimentView.of(store.get_experiment("es"))
    figures = Figures(view, store.list_trials("es"), store.get_observations)
    names = {t.name for t in figures.figure("timeline").data}
    assert names == {"COMPLETE", "PRUNED", "FAIL"}
    # EarlyStopped trials count for the best value (as the store ranks them).
    assert len(figures.figure("history").data[0].x) == 5


def test_trial_details_with_history_and_local_log_tail(make, store, serve, tmp_path):
    store.create_experiment("mnist", "default", make.spec())
    (name,) = make.add_trials(store, "mnist", 1)
    log = tmp_path / "trial.log"
    log.write_text("".join(f"epoch {i} loss={1 / (i + 1)}\n" for i in range(20000)))
    store.update_trial(name, executor_kind="local", log_path=str(log))
    served = serve(store)
    assert served.get("/trials/" + name)[0] == 200
    details = json.loads(served.get("/api/trial" + q(name=name))[1])
    assert details["parameters"] == {"lr": 0.001, "layers": 1, "opt": "sgd"}
    assert [p["step"] for p in details["history"]["loss"]] == [0, 1, 2]
    assert details["log"].endswith("epoch 19999 loss=5e-05\n")
    assert details["log"].startswith("epoch ")  # cut at a line start
    assert len(details["log"]) <= 64 * 1024


def test_log_of_a_non_local_trial_is_not_read(make, store, serve, tmp_path):
    store.create_experiment("mnist", "default", make.spec())
    (name,) = make.add_trials(store, "mnist", 1)
    log = tmp_path / "trial.log"
    log.write_text("secret-ish\n")
    store.update_trial(name, executor_kind="kubernetes", log_path=str(log))
    details = json.loads(serve(store).get("/api/trial" + q(name=name))[1])
    assert details["log"] is None


def test_download_is_csv_of_the_table_columns(make, store, serve):
    store.create_experiment("mnist", "default", make.spec())
    make.add_trials(store, "mnist", 4)
    store.create_trials("mnist", [("formula", {"lr": "=1+1", "layers": "2", "opt": "sgd"})])
    served = serve(store)
    status, body, headers = served.get("/api/trials.csv" + q(experiment="mnist"))
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert 'filename="mnist-trials.csv"' in headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(body)))
    table = json.loads(served.get("/api/trials" + q(experiment="mnist"))[1])
    assert rows[0] == table["columns"]
    assert [r[0] for r in rows[1:]] == [r[0] for r in table["rows"]]
    lr = rows[0].index("params.lr")
    assert rows[-1][lr] == "'=1+1"  # a spreadsheet must not run it as a formula


def test_assets_are_served_locally(store, serve):
    served = serve(store)
    status, body, headers = served.get("/static/plotly.min.js")
    assert status == 200 and "plotly" in body[:2000].lower() and len(body) > 1_000_000
    assert served.get("/static/dashboard.js")[0] == 200
    assert served.get("/static/../_app.py")[0] == 404
    page = served.get("/experiments")[1]
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere


def test_observations_with_no_step_are_plotted_in_order(make, store, serve):
    store.create_experiment("mnist", "default", make.spec())
    (name,) = make.add_trials(store, "mnist", 1, observations=False)
    store.add_observations(name, [Observation(name, "loss", v) for v in (3.0, 2.0, 1.0)])
    details = json.loads(serve(store).get("/api/trial" + q(name=name))[1])
    assert [(p["step"], p["value"]) for p in details["history"]["loss"]] == [
        (0, 3.0),
        (1, 2.0),
        (2, 1.0),
    ]


def test_big_experiments_chart_an_even_sample_with_the_best_trial(make, store, serve, monkeypatch):
    from tuner.dashboard import _figures

    monkeypatch.setattr(_figures, "CHART_TRIALS", 5)
    monkeypatch.setattr(_figures, "IMPORTANCE_TRIALS", 4)
    store.create_experiment("big", "default", make.spec())
    make.add_trials(store, "big", 23, observations=False)
    best = store.best_trial("big")
    assert best is not None
    served = serve(store)

    def answer(kind: str) -> dict:
        return json.loads(served.get("/api/figure" + q(experiment="big", kind=kind))[1])

    parallel = answer("parallel")
    assert parallel["note"] == "5 of 23 trials, evenly spaced"
    lines = [t for t in parallel["figure"]["data"] if t.get("mode") == "lines"]
    assert len(lines) == 5  # Optuna draws one line per trial
    picked = _figures.spread(store.list_trials("big"), 5, best.name)
    assert len(picked) == 5 and best.name in [t.name for t in picked]
    assert best.name not in [t.name for t in _figures.spread(store.list_trials("big"), 5, None)]
    history = answer("history")
    assert history["note"] is None and len(history["figure"]["data"][0]["x"]) == 23
    assert answer("importances")["note"] == "fitted on 4 of 23 trials"


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
def test_history_draws_each_value_and_the_best_so_far(make, store, goal):
    store.create_experiment("h", "default", make.spec(goal=goal))
    make.add_trials(store, "h", 4, observations=False)
    make.add_trials(store, "h", 1, start=4, status=TrialStatus.FAILED, observations=False)
    make.add_trials(store, "h", 3, start=5, observations=False)
    from tuner.dashboard._data import ExperimentView

    view = ExperimentView.of(store.get_experiment("h"))
    values, best = (
        Figures(view, store.list_trials("h"), store.get_observations).figure("history").data
    )
    losses = [make.loss(i) for i in (0, 1, 2, 3, 5, 6, 7)]
    pick = min if goal == "minimize" else max
    assert list(values.x) == [0, 1, 2, 3, 5, 6, 7]  # the failed trial 4 has no point
    assert list(values.y) == pytest.approx(losses)
    assert list(best.y) == pytest.approx([pick(losses[: i + 1]) for i in range(len(losses))])


def test_charts_of_one_study_leave_its_trials_unchanged(make, store):
    # The study's trials are shared with the copies Optuna's plots take, not deep-copied.
    store.create_experiment("s", "default", make.spec())
    make.add_trials(store, "s", 6)
    from tuner.dashboard._data import ExperimentView

    view = ExperimentView.of(store.get_experiment("s"))
    figures = Figures(view, store.list_trials("s"), store.get_observations)
    before = [(t.params, t.values, t.distributions) for t in figures.study.trials]
    for kind in ("slice", "parallel", "contour", "importances"):
        assert figures.figure(kind).data, kind
    assert [(t.params, t.values, t.distributions) for t in figures.study.trials] == before
    assert [t.user_attrs["name"] for t in figures.study.trials] == [
        t.name for t in store.list_trials("s")
    ]
