"""Hyperband behind the controller, over real gRPC and the local executor: the brackets run
with the trial counts and resources of Katib's formulas (computed here, not by the
algorithm), and a suggestion server replaced mid-bracket continues the same bracket from
the algorithm settings the store kept."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import support

from suggestion.service import create_server
from tuner.controller import Controller, InvalidSettingsError, SuggestionClient
from tuner.executors import LocalExecutor
from tuner.spec import Experiment, load_file
from tuner.store import Store, TrialRecord

# Prints a loss that falls with the epochs (the resource) and is smallest at lr = 0.03.
TRIAL = r"""
import sys
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
lr, epochs = float(opts["lr"]), int(opts["epochs"])
for epoch in range(1, epochs + 1):
    print(f"loss={(lr - 0.03) ** 2 * 1000 + 1.0 / epoch}", flush=True)
"""


def katib_rungs(r_l: float, eta: int) -> list[tuple[int, int]]:
    """(trials, resource) of each rung in order, from Katib's hyperband formulas: bracket s
    from s_max = int(log(r_l) / log(eta)) down to 0 starts n = ceil((s_max + 1) * eta**s /
    (s + 1)) trials at r = int(r_l * eta**-s); rung i keeps ceil(n / eta**i) at r * eta**i."""
    s_max = int(math.log(r_l) / math.log(eta))
    rungs = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) * eta**s / (s + 1))
        r = int(r_l * eta ** (-s))
        rungs += [(math.ceil(n / eta**i), r * eta**i) for i in range(s + 1)]
    return rungs


def hyperband_experiment(
    *, r_l: str, eta: str, parallel: int, max_trials: int | None = None, **spec: object
) -> Experiment:
    return support.experiment(
        "hb",
        command=[
            "python3",
            "trial.py",
            "--lr=${trialParameters.lr}",
            "--epochs=${trialParameters.epochs}",
        ],
        # Katib's example gives the resource parameter the feasibleSpace [1, 1].
        parameters=[
            support.double_parameter("lr", 0.0, 0.1),
            support.int_parameter("epochs", 1, 1),
        ],
        algorithm="hyperband",
        settings={"resource_name": "epochs", "r_l": r_l, "eta": eta, "random_state": "4"},
        parallel=parallel,
        max_trials=max_trials,
        **spec,
    )


def rungs_of(trials: list[TrialRecord]) -> list[list[TrialRecord]]:
    """Trials in creation order, grouped by the reply that created them (one transaction,
    one ``created_at``): hyperband hands out each rung in one reply."""
    groups: list[list[TrialRecord]] = []
    for trial in trials:
        if groups and groups[-1][0].created_at == trial.created_at:
            groups[-1].append(trial)
        else:
            groups.append([trial])
    for group in groups:
        assert len({t.parameters["epochs"] for t in group}) == 1
    return groups


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "trial.py").write_text(TRIAL)
    return tmp_path


@pytest.fixture
def store(root: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{root / 'tuner.db'}") as s:
        yield s


def run(root: Path, store: Store, address: str, experiment: Experiment) -> None:
    executor = LocalExecutor(root / "runs", default_working_dir=root, grace_period_seconds=2)
    with SuggestionClient(address) as client:
        controller = Controller(store, experiment, client, executor, poll_interval=0.05)
        controller.prepare()
        controller.run()


def check_promotions(groups: list[list[TrialRecord]]) -> None:
    """Each rung after a bracket's first holds the best of the rung before, lr unchanged."""
    for before, after in zip(groups, groups[1:], strict=False):
        if int(after[0].parameters["epochs"]) <= int(before[0].parameters["epochs"]):
            continue  # a new bracket starts with fresh random points
        ranked = sorted(before, key=lambda t: t.objective_value)  # type: ignore[arg-type, return-value]
        assert [t.parameters["lr"] for t in after] == [
            t.parameters["lr"] for t in ranked[: len(after)]
        ]


def test_a_hyperband_experiment_runs_katibs_brackets_to_the_end(
    root: Path, store: Store, suggestion_address: str
) -> None:
    run(root, store, suggestion_address, hyperband_experiment(r_l="4", eta="2", parallel=4))

    trials = store.list_trials("hb")
    groups = rungs_of(trials)
    expected = katib_rungs(4, 2)
    assert expected == [(4, 1), (2, 2), (1, 4), (3, 2), (2, 4), (3, 4)]
    assert [(len(g), int(g[0].parameters["epochs"])) for g in groups] == expected
    assert all(t.status.value == "Succeeded" for t in trials)
    check_promotions(groups)
    stored = store.get_experiment("hb")
    assert stored.reason == "ExperimentSuggestionEndReached"
    assert dict(stored.algorithm_settings)["current_s"] == "-1"


def test_a_new_suggestion_server_continues_the_bracket_from_the_stored_settings(
    root: Path, store: Store
) -> None:
    full = katib_rungs(9, 3)  # 9 @1, 3 @3, 1 @9, 5 @3, 2 @9, 3 @9
    first, port = create_server("127.0.0.1:0")
    try:
        # maxTrialCount stops the run after bracket 2's first two rungs (9 + 3 trials).
        experiment = hyperband_experiment(
            r_l="9", eta="3", parallel=9, max_trials=12, resumePolicy="LongRunning"
        )
        run(root, store, f"127.0.0.1:{port}", experiment)
    finally:
        first.stop(grace=None)
    stopped = store.get_experiment("hb")
    assert stopped.reason == "ExperimentMaxTrialsReached"
    state = dict(stopped.algorithm_settings)
    assert (state["current_s"], state["current_i"], state["evaluating_trials"]) == ("2", "1", "3")

    second, port = create_server("127.0.0.1:0")  # a cold server: it knows nothing
    try:
        more = hyperband_experiment(
            r_l="9", eta="3", parallel=9, max_trials=100, resumePolicy="LongRunning"
        )
        run(root, store, f"127.0.0.1:{port}", more)
    finally:
        second.stop(grace=None)

    groups = rungs_of(store.list_trials("hb"))
    assert [(len(g), int(g[0].parameters["epochs"])) for g in groups] == full
    check_promotions(groups)
    assert store.get_experiment("hb").reason == "ExperimentSuggestionEndReached"


KATIB_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hyperband-katib.yaml"


def test_katibs_example_passes_the_suggestion_services_validation(
    suggestion_address: str,
) -> None:
    (experiment,) = load_file(KATIB_EXAMPLE)
    with SuggestionClient(suggestion_address) as client:
        client.validate(experiment)
        too_few = experiment.model_copy(
            update={"spec": experiment.spec.model_copy(update={"parallel_trial_count": 1})}
        )
        with pytest.raises(InvalidSettingsError, match="parallelTrialCount: 1 is less than 2"):
            client.validate(too_few)
