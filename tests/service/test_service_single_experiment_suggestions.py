"""A Katib suggestion image holds one experiment's state per process (issue 11, item 6):
`tuner controller --suggestion-address` sends it only the first experiment it drives and
refuses every other with an error naming both and the address, unless told that the
service serves many (`--suggestion-multi-experiment`, as tuner's own does)."""

from __future__ import annotations

import subprocess

from support import HANG_GUARD_SECONDS, tuner_command, wait_until

from tuner.store import ExperimentStatus


def statuses(bench) -> dict[str, ExperimentStatus]:  # noqa: ANN001 - the conftest Bench
    with bench.store() as store:
        return {e.name: e.status for e in store.list_experiments()}


def test_a_single_experiment_service_gets_one_experiment_and_the_other_is_refused(
    bench,  # noqa: ANN001
) -> None:
    path = bench.write("ab.yaml", bench.experiment("alpha"), bench.experiment("beta"))
    assert bench.submit(path) == 0
    controller = bench.start_controller("--suggestion-address", bench.suggestion_address)
    found = wait_until(
        lambda: ExperimentStatus.SUCCEEDED in statuses(bench).values() or None,
        "one experiment to succeed",
    )
    assert found
    [driven] = [n for n, s in statuses(bench).items() if s is ExperimentStatus.SUCCEEDED]
    [refused] = {"alpha", "beta"} - {driven}
    line = wait_until(
        lambda: next(
            (
                x
                for x in controller.log.read_text().splitlines()
                if f"experiment {refused}: not driven" in x
            ),
            None,
        ),
        "the refusal in the controller's log",
    )
    assert f"the suggestion service at {bench.suggestion_address} already serves" in line
    assert f"experiment {driven}" in line and "--suggestion-multi-experiment" in line
    assert statuses(bench)[refused] is ExperimentStatus.CREATED
    with bench.store() as store:
        assert store.list_trials(refused) == []
    code, _ = controller.terminate()
    assert code == 0
    assert controller.log.read_text().count(f"experiment {refused}: not driven") == 1


def test_a_multi_experiment_service_gets_every_experiment(bench) -> None:  # noqa: ANN001
    path = bench.write("ab.yaml", bench.experiment("alpha"), bench.experiment("beta"))
    assert bench.submit(path) == 0
    bench.start_controller(
        "--suggestion-address", bench.suggestion_address, "--suggestion-multi-experiment"
    )
    wait_until(
        lambda: set(statuses(bench).values()) == {ExperimentStatus.SUCCEEDED},
        "both experiments to succeed",
    )


def test_tuner_run_refuses_a_file_of_two_experiments_for_a_single_experiment_service(
    bench,  # noqa: ANN001
) -> None:
    path = bench.write("ab.yaml", bench.experiment("alpha"), bench.experiment("beta"))
    run = [*tuner_command(), "run", path, "--db", bench.db_url, "--no-progress"]
    run += ["--run-dir", str(bench.run_dir), "--suggestion-address", bench.suggestion_address]
    refused = subprocess.run(run, capture_output=True, text=True, timeout=HANG_GUARD_SECONDS)
    assert refused.returncode == 2
    assert "experiments 'alpha', 'beta' would all be sent to the suggestion service at" in (
        refused.stderr
    )
    assert bench.suggestion_address in refused.stderr
    assert statuses(bench) == {}
    allowed = subprocess.run(
        [*run, "--suggestion-multi-experiment"],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )
    assert allowed.returncode == 0, allowed.stderr
    assert set(statuses(bench).values()) == {ExperimentStatus.SUCCEEDED}
