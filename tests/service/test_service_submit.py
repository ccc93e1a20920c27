"""`tuner submit`: every error reported with nothing written; stored experiments in state
Created; resubmission follows `tuner run`'s resume rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.controller import REASON_MAX_TRIALS_REACHED
from tuner.store import ExperimentRecord, ExperimentStatus


def stored(bench) -> dict[str, ExperimentRecord]:  # noqa: ANN001 - the conftest Bench
    with bench.store() as store:
        return {e.name: e for e in store.list_experiments()}


def test_submit_stores_experiments_in_state_created(bench, capsys) -> None:
    one = bench.write("one.yaml", bench.experiment("alpha"))
    two = bench.write("two.yaml", bench.experiment("beta"), bench.experiment("gamma"))

    assert bench.submit(one, two) == 0

    experiments = stored(bench)
    assert sorted(experiments) == ["alpha", "beta", "gamma"]
    assert {e.status for e in experiments.values()} == {ExperimentStatus.CREATED}
    assert all(e.lease_owner is None for e in experiments.values())
    out = capsys.readouterr().out
    for name in ("alpha", "beta", "gamma"):
        assert f"experiment {name!r}: submitted (Created)" in out
    with bench.store() as store:
        assert sum(store.count_trials("alpha").values()) == 0


def test_submit_reports_every_spec_error_and_writes_nothing(bench, capsys) -> None:
    broken = bench.experiment("alpha")
    broken["spec"]["maxTrialCount"] = -1
    other = bench.experiment("beta")
    other["spec"]["parameters"][0]["feasibleSpace"] = {"min": "5", "max": "1"}
    files = [
        bench.write("broken.yaml", broken),
        bench.write("other.yaml", other),
        bench.write("fine.yaml", bench.experiment("gamma")),
    ]

    assert bench.submit(*files) == 2

    err = capsys.readouterr().err
    assert "broken.yaml: spec.maxTrialCount" in err
    assert "other.yaml: spec.parameters[0].feasibleSpace" in err
    # Spec errors are found before the database is opened: not even its file exists.
    assert not (bench.root / "tuner.db").exists()


def test_submit_reports_what_the_suggestion_service_and_executor_refuse(bench, capsys) -> None:
    refused = bench.experiment("alpha")
    refused["spec"]["algorithm"]["algorithmSettings"] = [{"name": "no_such", "value": "1"}]
    from_secret = bench.experiment("beta")
    container = from_secret["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    container["env"] = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    files = [
        bench.write("refused.yaml", refused),
        bench.write("from-secret.yaml", from_secret),
        bench.write("fine.yaml", bench.experiment("gamma")),
    ]

    assert bench.submit(*files) == 2

    err = capsys.readouterr().err
    assert "refused.yaml: experiment 'alpha':" in err and "no_such" in err
    assert "from-secret.yaml: experiment 'beta':" in err and "valueFrom" in err
    assert stored(bench) == {}


def test_submit_refuses_a_name_used_twice(bench, capsys) -> None:
    one = bench.write("one.yaml", bench.experiment("alpha"))
    two = bench.write("two.yaml", bench.experiment("alpha", max_trials=9))

    assert bench.submit(one, two) == 2

    assert "two.yaml: metadata.name 'alpha' is also used in" in capsys.readouterr().err
    assert not (bench.root / "tuner.db").exists()


def test_resubmitting_the_same_spec_is_already_submitted(bench, capsys) -> None:
    path = bench.write("alpha.yaml", bench.experiment("alpha"))
    assert bench.submit(path) == 0
    before = stored(bench)["alpha"]

    assert bench.submit(path) == 0

    assert "experiment 'alpha': already submitted (Created)" in capsys.readouterr().out
    assert stored(bench)["alpha"] == before


def test_resubmitting_changed_counts_updates_an_unfinished_experiment(bench, capsys) -> None:
    assert bench.submit(bench.write("a.yaml", bench.experiment("alpha"))) == 0

    raised = bench.write("b.yaml", bench.experiment("alpha", max_trials=7, parallel=3))
    assert bench.submit(raised) == 0

    spec = stored(bench)["alpha"].spec
    assert (spec["maxTrialCount"], spec["parallelTrialCount"]) == (7, 3)
    out = capsys.readouterr().out
    assert "spec.maxTrialCount 4 -> 7" in out and "spec.parallelTrialCount 2 -> 3" in out


def test_resubmitting_another_search_space_is_refused(bench, capsys) -> None:
    assert bench.submit(bench.write("a.yaml", bench.experiment("alpha"))) == 0
    before = stored(bench)["alpha"]
    changed = bench.experiment("alpha")
    changed["spec"]["parameters"][0]["feasibleSpace"]["max"] = "99"

    assert bench.submit(bench.write("b.yaml", changed)) == 2

    err = capsys.readouterr().err
    assert "spec.parameters[0].feasibleSpace.max: stored '1000000', file '99'" in err
    assert stored(bench)["alpha"] == before


@pytest.mark.parametrize(("policy", "code"), [("LongRunning", 0), ("Never", 2)])
def test_resubmitting_a_finished_experiment_restarts_it_only_as_its_policy_allows(
    bench, capsys, policy: str, code: int
) -> None:
    first = bench.experiment("alpha", max_trials=2, resumePolicy=policy)
    assert bench.submit(bench.write("a.yaml", first)) == 0
    with bench.store() as store:
        store.set_experiment_status("alpha", ExperimentStatus.SUCCEEDED, REASON_MAX_TRIALS_REACHED)

    more = bench.experiment("alpha", max_trials=5, resumePolicy=policy)
    assert bench.submit(bench.write("b.yaml", more)) == code

    experiment = stored(bench)["alpha"]
    if code == 0:
        assert experiment.status is ExperimentStatus.RESTARTING
        assert experiment.spec["maxTrialCount"] == 5
        assert "restarting: spec.maxTrialCount 2 -> 5 (Restarting)" in capsys.readouterr().out
    else:
        assert experiment.status is ExperimentStatus.SUCCEEDED
        assert experiment.spec["maxTrialCount"] == 2
        assert "resumePolicy" in capsys.readouterr().err


def test_submit_with_an_unknown_executor_is_a_usage_error(bench, capsys) -> None:
    path = bench.write("a.yaml", bench.experiment("alpha"))

    assert bench.submit(path, extra=("--executor", "nowhere")) == 2

    assert "'nowhere' is not a known executor" in capsys.readouterr().err
    assert not Path(bench.root / "tuner.db").exists()


CAP = "tuner.kubeflow.org/max-observations-per-metric"
VOLUME = "tuner.kubeflow.org/checkpoint-volume"


def annotated(bench, name: str, annotations: dict[str, str], **spec) -> dict:  # noqa: ANN001
    document = bench.experiment(name, **spec)
    document["metadata"]["annotations"] = annotations
    return document


def test_resubmitting_changed_annotations_updates_an_unfinished_experiment(bench, capsys) -> None:
    assert bench.submit(bench.write("a.yaml", annotated(bench, "alpha", {CAP: "50"}))) == 0
    assert stored(bench)["alpha"].annotations == {CAP: "50"}

    changed = annotated(bench, "alpha", {CAP: "7", "team": "vision"})
    assert bench.submit(bench.write("b.yaml", changed)) == 0

    assert stored(bench)["alpha"].annotations == {CAP: "7", "team": "vision"}
    out = capsys.readouterr().out
    assert (
        f"updated: metadata.annotations['team'] (unset) -> 'vision', "
        f"metadata.annotations[{CAP!r}] '50' -> '7' (Created)"
    ) in out


def test_resubmitting_another_checkpoint_volume_is_refused(bench, capsys) -> None:
    assert bench.submit(bench.write("a.yaml", annotated(bench, "alpha", {VOLUME: "one"}))) == 0

    assert bench.submit(bench.write("b.yaml", annotated(bench, "alpha", {VOLUME: "two"}))) == 2

    assert f"metadata.annotations[{VOLUME!r}]: stored 'one', file 'two'" in capsys.readouterr().err
    assert stored(bench)["alpha"].annotations == {VOLUME: "one"}


def test_a_finished_experiment_is_not_restarted_for_annotations_alone(bench, capsys) -> None:
    first = annotated(bench, "alpha", {CAP: "50"}, resumePolicy="LongRunning")
    assert bench.submit(bench.write("a.yaml", first)) == 0
    with bench.store() as store:
        store.set_experiment_status("alpha", ExperimentStatus.SUCCEEDED, REASON_MAX_TRIALS_REACHED)

    again = annotated(bench, "alpha", {CAP: "7"}, resumePolicy="LongRunning")
    assert bench.submit(bench.write("b.yaml", again)) == 0

    assert "already submitted (Succeeded)" in capsys.readouterr().out
    assert stored(bench)["alpha"].annotations == {CAP: "50"}
