"""The reconcile loop's pure rules: Katib's stop order, slot filling, names, resume checks."""

from __future__ import annotations

import re

import pytest

from tuner.controller._decide import (
    REASON_FAILED,
    REASON_GOAL_REACHED,
    REASON_MAX_TRIALS_REACHED,
    REASON_SUGGESTION_END_REACHED,
    Limits,
    TrialCounts,
    annotation_changes,
    completion,
    goal_reached,
    merge_settings,
    resume_decision,
    spec_difference,
    trial_name,
    trials_to_add,
)
from tuner.space import Direction

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def limits(parallel: int = 3, max_trials: int | None = 10, max_failed: int | None = 3) -> Limits:
    return Limits(parallel, max_trials, max_failed)


def finished(counts: TrialCounts, lim: Limits | None = None, *, goal=False, exhausted=False):
    return completion(
        counts, lim or limits(), goal_is_reached=goal, suggestions_exhausted=exhausted
    )


class TestGoal:
    def test_minimize_reaches_at_or_below_goal(self) -> None:
        assert goal_reached(Direction.MINIMIZE, 0.1, 0.1)
        assert goal_reached(Direction.MINIMIZE, 0.1, 0.05)
        assert not goal_reached(Direction.MINIMIZE, 0.1, 0.11)

    def test_maximize_reaches_at_or_above_goal(self) -> None:
        assert goal_reached(Direction.MAXIMIZE, 0.9, 0.9)
        assert not goal_reached(Direction.MAXIMIZE, 0.9, 0.89)

    def test_no_goal_or_no_value_never_reaches(self) -> None:
        assert not goal_reached(Direction.MINIMIZE, None, -1e9)
        assert not goal_reached(Direction.MAXIMIZE, 1.0, None)


class TestCompletionOrder:
    def test_running_experiment_is_not_finished(self) -> None:
        assert finished(TrialCounts(running=3, succeeded=2)) is None

    def test_goal_wins_over_every_other_condition(self) -> None:
        counts = TrialCounts(failed=3, succeeded=7)
        done = finished(counts, goal=True, exhausted=True)
        assert done is not None and done.succeeded and done.reason == REASON_GOAL_REACHED

    def test_max_failed_checked_before_max_trials(self) -> None:
        done = finished(TrialCounts(failed=2, metrics_unavailable=1, succeeded=7))
        assert done is not None and not done.succeeded and done.reason == REASON_FAILED
        assert "3 failed" in done.message

    def test_metrics_unavailable_counts_as_failed(self) -> None:
        done = finished(TrialCounts(metrics_unavailable=3, succeeded=1))
        assert done is not None and done.reason == REASON_FAILED

    def test_zero_max_failed_never_fails_without_failures(self) -> None:
        assert finished(TrialCounts(succeeded=1, running=2), limits(max_failed=0)) is None

    def test_max_trials_counts_every_completed_state(self) -> None:
        counts = TrialCounts(
            succeeded=6, failed=1, killed=1, early_stopped=1, metrics_unavailable=1
        )
        done = finished(counts, limits(max_failed=None))
        assert done is not None and done.succeeded and done.reason == REASON_MAX_TRIALS_REACHED

    def test_exhaustion_waits_for_active_trials(self) -> None:
        assert finished(TrialCounts(succeeded=4, running=1), exhausted=True) is None
        done = finished(TrialCounts(succeeded=5), exhausted=True)
        assert done is not None and done.reason == REASON_SUGGESTION_END_REACHED

    def test_no_trial_with_the_objective_fails_instead_of_succeeding(self) -> None:
        for done in (
            finished(TrialCounts(metrics_unavailable=9, killed=1), limits(max_failed=None)),
            finished(TrialCounts(metrics_unavailable=2), limits(max_failed=None), exhausted=True),
        ):
            assert done is not None and not done.succeeded and done.reason == REASON_FAILED
            assert "MetricsUnavailable" in done.message

    def test_one_succeeded_trial_keeps_the_success(self) -> None:
        done = finished(TrialCounts(metrics_unavailable=9, succeeded=1), limits(max_failed=None))
        assert done is not None and done.succeeded and done.reason == REASON_MAX_TRIALS_REACHED

    def test_unlimited_trials_never_reach_max(self) -> None:
        assert finished(TrialCounts(succeeded=10_000), limits(max_trials=None)) is None


class TestTrialsToAdd:
    def test_fills_free_parallel_slots(self) -> None:
        assert trials_to_add(TrialCounts(running=1), limits(parallel=3)) == 2

    def test_never_exceeds_max_trial_count_in_all(self) -> None:
        # 8 completed + 1 running of 10: one more row at most, even with 3 slots.
        assert trials_to_add(TrialCounts(succeeded=8, running=1), limits()) == 1
        assert trials_to_add(TrialCounts(succeeded=9, created=1), limits()) == 0

    def test_created_rows_hold_slots(self) -> None:
        assert trials_to_add(TrialCounts(created=2, running=1), limits()) == 0

    def test_lowered_parallelism_adds_nothing(self) -> None:
        assert trials_to_add(TrialCounts(running=5), limits(parallel=2)) == 0

    def test_rows_stay_within_budget_over_a_whole_run(self) -> None:
        counts = TrialCounts()
        lim = limits(parallel=4, max_trials=10)
        rows = 0
        while finished(counts, lim) is None:
            add = trials_to_add(counts, lim)
            rows += add
            # Every active trial finishes before the next reconcile.
            counts = TrialCounts(succeeded=counts.completed + counts.active + add)
        assert rows == 10 and counts.completed == 10


class TestTrialName:
    def test_is_experiment_dash_eight_chars(self) -> None:
        name = trial_name("quickstart")
        assert re.fullmatch(r"quickstart-[a-z0-9]{8}", name)

    def test_long_experiment_name_is_trimmed_to_a_dns_label(self) -> None:
        name = trial_name("a" * 60 + "-b")
        assert len(name) <= 63 and DNS_LABEL.match(name)

    def test_trim_does_not_leave_a_trailing_dash(self) -> None:
        name = trial_name("a" * 53 + "-xyz")
        assert DNS_LABEL.match(name) and "--" not in name

    def test_invalid_characters_are_replaced(self) -> None:
        assert DNS_LABEL.match(trial_name("My_Exp.v2"))

    def test_every_position_draws_from_the_whole_alphabet(self) -> None:
        suffixes = [trial_name("e")[2:] for _ in range(1000)]
        alphabet = set("abcdefghijklmnopqrstuvwxyz0123456789")
        for position in range(8):
            # A character missing from 1000 uniform draws: probability ~5e-13.
            assert {s[position] for s in suffixes} == alphabet, f"position {position}"
        assert len(set(suffixes)) == len(suffixes)

    def test_skips_names_already_taken(self) -> None:
        tokens = iter(["aaaaaaaa", "bbbbbbbb"])
        name = trial_name("e", taken={"e-aaaaaaaa"}, token=lambda: next(tokens))
        assert name == "e-bbbbbbbb"


def spec(**overrides: object) -> dict:
    base: dict = {
        "maxTrialCount": 4,
        "parallelTrialCount": 2,
        "maxFailedTrialCount": 1,
        "resumePolicy": "LongRunning",
        "objective": {"type": "minimize", "goal": 0.1},
        "parameters": [{"name": "x", "feasibleSpace": {"min": "0", "max": "1"}}],
    }
    base.update(overrides)
    return base


class TestSpecDifference:
    def test_editable_fields_are_ignored(self) -> None:
        assert spec_difference(spec(), spec(maxTrialCount=9, parallelTrialCount=1)) is None

    def test_names_the_nested_path_and_both_values(self) -> None:
        new = spec(parameters=[{"name": "x", "feasibleSpace": {"min": "0", "max": "2"}}])
        diff = spec_difference(spec(), new)
        assert diff == "spec.parameters[0].feasibleSpace.max: stored '1', file '2'"

    def test_added_field_is_a_difference(self) -> None:
        diff = spec_difference(spec(), {**spec(), "earlyStopping": {"algorithmName": "m"}})
        assert diff is not None and diff.startswith("spec.earlyStopping: stored (unset)")


def decide(
    new: dict,
    *,
    finished: bool,
    succeeded: bool = True,
    reason: str | None = REASON_MAX_TRIALS_REACHED,
    total: int = 4,
):
    return resume_decision(
        stored_spec=spec(),
        new_spec=new,
        finished=finished,
        succeeded=succeeded,
        reason=reason,
        total_trials=total,
    )


class TestResumeDecision:
    def test_unfinished_experiment_continues(self) -> None:
        got = decide(spec(parallelTrialCount=1), finished=False)
        assert got.action == "continue" and got.spec_changed
        assert not decide(spec(), finished=False).spec_changed

    def test_finished_and_unchanged_is_done(self) -> None:
        assert decide(spec(), finished=True).action == "done"

    def test_raised_budget_restarts_long_running(self) -> None:
        assert decide(spec(maxTrialCount=6), finished=True).action == "restart"

    def test_never_policy_refuses_restart(self) -> None:
        stored = spec(resumePolicy="Never")
        got = resume_decision(
            stored_spec=stored,
            new_spec={**stored, "maxTrialCount": 6},
            finished=True,
            succeeded=True,
            reason=REASON_MAX_TRIALS_REACHED,
            total_trials=4,
        )
        assert got.action == "refuse" and "resumePolicy" in got.message

    def test_goal_reached_experiment_is_not_restartable(self) -> None:
        got = decide(spec(maxTrialCount=6), finished=True, reason=REASON_GOAL_REACHED)
        assert got.action == "refuse"

    def test_budget_must_exceed_existing_trials(self) -> None:
        got = decide(spec(maxTrialCount=4, parallelTrialCount=1), finished=True, total=4)
        assert got.action == "refuse" and "greater than" in got.message

    def test_other_field_change_is_refused_naming_it(self) -> None:
        got = decide(spec(objective={"type": "minimize", "goal": 0.2}), finished=False)
        assert got.action == "refuse"
        assert got.message.startswith("spec.objective.goal: stored 0.1, file 0.2")

    @pytest.mark.parametrize("finished_flag", [True, False])
    def test_unchanged_spec_never_refused(self, finished_flag: bool) -> None:
        assert decide(spec(), finished=finished_flag).action != "refuse"


CAP = "tuner.kubeflow.org/max-observations-per-metric"
TOKENLESS = "tuner.kubeflow.org/allow-tokenless-reports"
VOLUME = "tuner.kubeflow.org/checkpoint-volume"


def decide_annotations(
    stored: dict[str, str] | None,
    new: dict[str, str],
    *,
    finished: bool,
    new_spec: dict | None = None,
):
    return resume_decision(
        stored_spec=spec(),
        new_spec=new_spec or spec(),
        finished=finished,
        succeeded=True,
        reason=REASON_MAX_TRIALS_REACHED,
        total_trials=4,
        stored_annotations=stored,
        new_annotations=new,
    )


class TestResumeAnnotations:
    @pytest.mark.parametrize("new", [{CAP: "10"}, {TOKENLESS: "true"}, {"team": "b"}, {}])
    def test_a_changed_annotation_is_stored_on_an_unfinished_experiment(self, new: dict) -> None:
        got = decide_annotations({CAP: "50", "team": "a"}, new, finished=False)
        assert got.action == "continue" and got.spec_changed

    def test_unchanged_annotations_change_nothing(self) -> None:
        got = decide_annotations({CAP: "50"}, {CAP: "50"}, finished=False)
        assert got.action == "continue" and not got.spec_changed

    def test_a_finished_experiment_is_not_restarted_for_annotations_alone(self) -> None:
        assert decide_annotations({CAP: "50"}, {CAP: "10"}, finished=True).action == "done"
        raised = decide_annotations(
            {CAP: "50"}, {CAP: "10"}, finished=True, new_spec=spec(maxTrialCount=6)
        )
        assert raised.action == "restart" and raised.spec_changed

    @pytest.mark.parametrize("finished", [True, False])
    @pytest.mark.parametrize(
        ("stored", "new"), [({VOLUME: "a"}, {VOLUME: "b"}), ({}, {VOLUME: "b"})]
    )
    def test_a_changed_checkpoint_volume_is_refused_naming_it(
        self, finished: bool, stored: dict, new: dict
    ) -> None:
        got = decide_annotations(stored, new, finished=finished)
        assert got.action == "refuse"
        assert got.message.startswith(f"metadata.annotations[{VOLUME!r}]: stored ")
        assert "may not change" in got.message

    def test_an_experiment_stored_before_annotations_were_kept_takes_the_files(self) -> None:
        got = decide_annotations(None, {VOLUME: "pvc", CAP: "10"}, finished=False)
        assert got.action == "continue" and got.spec_changed
        assert not decide_annotations(None, {}, finished=False).spec_changed

    def test_changes_are_listed_by_key_with_both_values(self) -> None:
        assert annotation_changes({CAP: "50", "a": "1"}, {CAP: "10", "a": "1", "b": "2"}) == [
            "metadata.annotations['b'] (unset) -> '2'",
            f"metadata.annotations[{CAP!r}] '50' -> '10'",
        ]
        assert annotation_changes(None, {}) == []


def test_returned_settings_replace_by_name_and_append_new_ones_in_order() -> None:
    spec = (("resource_name", "epochs"), ("eta", "3"), ("r_l", "9"))
    returned = (("eta", "3.0"), ("current_s", "1"), ("r_l", "9.0"))
    assert merge_settings(spec, returned) == (
        ("resource_name", "epochs"),
        ("eta", "3.0"),
        ("r_l", "9.0"),
        ("current_s", "1"),
    )
    assert merge_settings((), returned) == returned
