"""Pure decisions of the reconcile loop: counting trials, when to stop, how many to add.

Everything here is a function of plain values, so the rules Katib's experiment controller
applies (``pkg/controller.v1beta1/experiment``) can be read and tested in one place.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from tuner.controller._checkpoints import CHECKPOINT_VOLUME_ANNOTATION
from tuner.space import Direction
from tuner.store import TrialStatus

# Katib's condition reasons (pkg/controller.v1beta1/experiment/util/status_util.go), stored
# verbatim on the experiment so tools written for Katib read them unchanged.
REASON_CREATED = "ExperimentCreated"
REASON_RUNNING = "ExperimentRunning"
REASON_RESTARTING = "ExperimentRestarting"
REASON_GOAL_REACHED = "ExperimentGoalReached"
REASON_MAX_TRIALS_REACHED = "ExperimentMaxTrialsReached"
REASON_SUGGESTION_END_REACHED = "ExperimentSuggestionEndReached"
REASON_FAILED = "ExperimentFailed"

# Trial reasons of our own (Katib leaves these to the Job controller).
TRIAL_REASON_DEADLINE = "DeadlineExceeded"
TRIAL_REASON_LOST = "TrialLost"
TRIAL_REASON_EXPERIMENT_DONE = "ExperimentCompleted"

_DNS_LABEL_MAX = 63
_SUFFIX_LEN = 8
_SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class TrialCounts:
    """How many trials of an experiment are in each state."""

    created: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    killed: int = 0
    early_stopped: int = 0
    metrics_unavailable: int = 0

    @classmethod
    def of(cls, states: Iterable[TrialStatus]) -> TrialCounts:
        """Count the given trial states."""
        tally = dict.fromkeys(TrialStatus, 0)
        for state in states:
            tally[TrialStatus(state)] += 1
        return cls(
            created=tally[TrialStatus.CREATED],
            running=tally[TrialStatus.RUNNING],
            succeeded=tally[TrialStatus.SUCCEEDED],
            failed=tally[TrialStatus.FAILED],
            killed=tally[TrialStatus.KILLED],
            early_stopped=tally[TrialStatus.EARLY_STOPPED],
            metrics_unavailable=tally[TrialStatus.METRICS_UNAVAILABLE],
        )

    @property
    def active(self) -> int:
        """Trials holding a parallel slot: created (about to run) or running."""
        return self.created + self.running

    @property
    def completed(self) -> int:
        """Finished trials in any way; Katib counts these against ``maxTrialCount``."""
        return (
            self.succeeded
            + self.failed
            + self.killed
            + self.early_stopped
            + self.metrics_unavailable
        )

    @property
    def failed_total(self) -> int:
        """Trials counted against ``maxFailedTrialCount`` (Katib: Failed + MetricsUnavailable)."""
        return self.failed + self.metrics_unavailable

    @property
    def total(self) -> int:
        return self.active + self.completed

    def by_status(self) -> dict[str, int]:
        """Counts keyed by the status names, every status present (the ``--output`` form)."""
        return {
            TrialStatus.CREATED.value: self.created,
            TrialStatus.RUNNING.value: self.running,
            TrialStatus.SUCCEEDED.value: self.succeeded,
            TrialStatus.FAILED.value: self.failed,
            TrialStatus.KILLED.value: self.killed,
            TrialStatus.EARLY_STOPPED.value: self.early_stopped,
            TrialStatus.METRICS_UNAVAILABLE.value: self.metrics_unavailable,
        }


@dataclass(frozen=True)
class Limits:
    """The experiment's budget, as in its spec (None: no limit)."""

    parallel_trial_count: int
    max_trial_count: int | None
    max_failed_trial_count: int | None


@dataclass(frozen=True)
class Completion:
    """Why an experiment is finished: Katib's condition (succeeded or not), reason and message."""

    succeeded: bool
    reason: str
    message: str


def goal_reached(direction: Direction, goal: float | None, best: float | None) -> bool:
    """Katib's rule: maximize reaches the goal at ``best >= goal``, minimize at ``best <= goal``."""
    if goal is None or best is None:
        return False
    return direction.reached(goal, best)


def completion(
    counts: TrialCounts,
    limits: Limits,
    *,
    goal_is_reached: bool,
    suggestions_exhausted: bool,
) -> Completion | None:
    """Whether the experiment is finished, checked in Katib's order; None while it runs.

    Order (``UpdateExperimentStatusCondition``): goal reached, then ``maxFailedTrialCount``
    reached (Failed and MetricsUnavailable trials count; 0 failures never trigger it), then
    ``maxTrialCount`` completed trials, then the suggestion service exhausted with no trial
    still active. Those last two end in failure instead when no trial succeeded and some
    ended MetricsUnavailable (a tuner rule; Katib would report success with no best trial).
    """
    if goal_is_reached:
        return Completion(
            True, REASON_GOAL_REACHED, "Experiment has succeeded because Objective goal has reached"
        )
    failed = counts.failed_total
    if (
        limits.max_failed_trial_count is not None
        and failed
        and (failed >= limits.max_failed_trial_count)
    ):
        return Completion(
            False,
            REASON_FAILED,
            f"Experiment has failed because max failed count has reached: {failed} failed "
            f"trial(s), maxFailedTrialCount {limits.max_failed_trial_count}",
        )
    if limits.max_trial_count is not None and counts.completed >= limits.max_trial_count:
        return _unless_no_metrics(counts) or Completion(
            True,
            REASON_MAX_TRIALS_REACHED,
            f"Experiment has succeeded because max trial count has reached: "
            f"{counts.completed} completed trial(s), maxTrialCount {limits.max_trial_count}",
        )
    if suggestions_exhausted and counts.active == 0:
        return _unless_no_metrics(counts) or Completion(
            True,
            REASON_SUGGESTION_END_REACHED,
            "Experiment has succeeded because suggestion service has reached the end",
        )
    return None


def _unless_no_metrics(counts: TrialCounts) -> Completion | None:
    """Failure instead of success when trials ended without the objective metric and none
    succeeded: Katib would call that a success (unless ``maxFailedTrialCount`` caught it
    first), with no best trial to show. The reason stays Katib's ``ExperimentFailed``; the
    message names Katib's trial reason for missing metrics."""
    if counts.succeeded or not counts.metrics_unavailable:
        return None
    return Completion(
        False,
        REASON_FAILED,
        f"Experiment has failed because no trial reported the objective metric: "
        f"{counts.metrics_unavailable} trial(s) {TrialStatus.METRICS_UNAVAILABLE.value}, "
        f"none succeeded",
    )


def trials_to_add(counts: TrialCounts, limits: Limits) -> int:
    """How many new trials to request now (Katib's ``ReconcileTrials``).

    Fills free parallel slots, but never beyond ``maxTrialCount - completed``: since every
    trial holds a row from before it is launched, rows never exceed ``maxTrialCount``. When
    ``parallelTrialCount`` was lowered below the active count, nothing is added and the
    surplus drains as trials finish (Katib deletes the newest trials instead).
    """
    required = limits.parallel_trial_count
    if limits.max_trial_count is not None:
        required = min(required, limits.max_trial_count - counts.completed)
    return max(0, required - counts.active)


def merge_settings(
    settings: Sequence[tuple[str, str]], update: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    """``settings`` with each of ``update`` replacing the one of its name, or appended
    (Katib's ``updateAlgorithmSettings`` and ``appendAlgorithmSettingsFromSuggestion``)."""
    merged = list(settings)
    for name, value in update:
        index = next((i for i, (known, _) in enumerate(merged) if known == name), None)
        if index is None:
            merged.append((name, value))
        else:
            merged[index] = (name, value)
    return tuple(merged)


def trial_name(
    experiment_name: str,
    taken: Collection[str] = (),
    token: Callable[[], str] | None = None,
) -> str:
    """A fresh DNS-1123 label ``<experiment>-<8 random [a-z0-9]>`` not in ``taken``.

    The experiment part is lower-cased, characters outside ``[a-z0-9-]`` become ``-``, and
    it is trimmed so the whole name fits 63 characters.
    """
    prefix = re.sub(r"[^a-z0-9-]", "-", experiment_name.lower())
    prefix = prefix[: _DNS_LABEL_MAX - _SUFFIX_LEN - 1].strip("-") or "trial"
    make = token or _random_token
    for _ in range(1000):
        name = f"{prefix}-{make()}"
        if name not in taken:
            return name
    raise RuntimeError(f"no free trial name for experiment {experiment_name!r} in 1000 draws")


def name_trials(
    experiment_name: str,
    assignments: Sequence[Mapping[str, str]],
    proposed: Sequence[str],
    taken: Collection[str] = (),
) -> list[tuple[str, dict[str, str]]]:
    """A name for each suggested assignment: the one the suggestion service proposed
    (``proposed[i]``, Katib allows it) when it is a DNS-1123 label not in ``taken``, else a
    fresh `trial_name`. Names are unique among themselves and ``taken``."""
    # ``taken`` is looked into, not copied: it holds every trial of a long experiment.
    used = _Either(taken, set())
    named = []
    for index, assignment in enumerate(assignments):
        name = proposed[index] if index < len(proposed) else ""
        if not (name and _DNS_LABEL.fullmatch(name) and name not in used):
            name = trial_name(experiment_name, used)
        used.batch.add(name)
        named.append((name, dict(assignment)))
    return named


@dataclass(frozen=True)
class _Either(Collection[str]):
    """The names in ``taken`` or in ``batch``, without copying ``taken``."""

    taken: Collection[str]
    batch: set[str]

    def __contains__(self, name: object) -> bool:
        return name in self.batch or name in self.taken

    def __iter__(self) -> Iterator[str]:
        yield from self.taken
        yield from self.batch

    def __len__(self) -> int:
        return len(self.taken) + len(self.batch)


def _random_token() -> str:
    # One draw from the system's generator for the whole suffix, not one per character.
    number = secrets.randbelow(len(_SUFFIX_ALPHABET) ** _SUFFIX_LEN)
    digits = []
    for _ in range(_SUFFIX_LEN):
        number, digit = divmod(number, len(_SUFFIX_ALPHABET))
        digits.append(_SUFFIX_ALPHABET[digit])
    return "".join(digits)


@dataclass(frozen=True)
class ResumeDecision:
    """What `Controller.run` does with the file's experiment, given what the store holds.

    ``action`` is one of ``"create"`` (not in the store yet: `Controller.prepare` decides
    that one), ``"continue"`` (not finished: keep going), ``"restart"`` (finished,
    restartable, budget raised), ``"done"`` (finished: report, run nothing) and ``"refuse"``
    (the file asks for something the stored experiment cannot do; ``message`` says why).
    ``spec_changed``: the file's editable counts or its annotations differ from the stored
    ones (to be written before running).
    """

    action: str
    message: str = ""
    spec_changed: bool = False


EDITABLE_FIELDS = ("parallelTrialCount", "maxTrialCount", "maxFailedTrialCount")
RESTARTABLE_POLICIES = ("LongRunning", "FromVolume")
FIXED_ANNOTATIONS = (CHECKPOINT_VOLUME_ANNOTATION,)
"""Annotations that may not change on an existing experiment, like its spec fields: the
volume holding pbt's checkpoints of the trials so far. Every other annotation (the
observation cap, tokenless reports, anyone's own) may change; the new value is stored."""


def annotation_changes(stored: Mapping[str, str] | None, new: Mapping[str, str]) -> list[str]:
    """Each annotation whose value differs, as ``metadata.annotations[KEY] old -> new``.
    ``stored`` None: an experiment stored before tuner kept annotations (every one is new)."""
    stored = stored or {}
    return [
        f"metadata.annotations[{key!r}] {_show(stored.get(key))} -> {_show(new.get(key))}"
        for key in sorted(set(stored) | set(new))
        if stored.get(key) != new.get(key)
    ]


def spec_difference(stored: object, new: object, path: str = "spec") -> str | None:
    """The first field path where two camelCase spec dicts differ, ignoring editable fields.

    Returns a message naming the path and both values, or None when they agree.
    """
    if isinstance(stored, dict) and isinstance(new, dict):
        for key in sorted(set(stored) | set(new), key=str):
            if path == "spec" and key in EDITABLE_FIELDS:
                continue
            sub = f"{path}.{key}"
            if key not in stored or key not in new:
                return f"{sub}: stored {_show(stored.get(key))}, file {_show(new.get(key))}"
            found = spec_difference(stored[key], new[key], sub)
            if found:
                return found
        return None
    if isinstance(stored, list) and isinstance(new, list):
        if len(stored) != len(new):
            return f"{path}: stored {len(stored)} item(s), file {len(new)} item(s)"
        for i, (a, b) in enumerate(zip(stored, new, strict=True)):
            found = spec_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    if stored != new:
        return f"{path}: stored {_show(stored)}, file {_show(new)}"
    return None


def _show(value: object) -> str:
    return "(unset)" if value is None else repr(value)


def resume_decision(
    *,
    stored_spec: dict,
    new_spec: dict,
    finished: bool,
    succeeded: bool,
    reason: str | None,
    total_trials: int,
    stored_annotations: Mapping[str, str] | None = None,
    new_annotations: Mapping[str, str] | None = None,
) -> ResumeDecision:
    """Katib's rules for editing an existing experiment (its validating webhook).

    Only ``parallelTrialCount``, ``maxTrialCount`` and ``maxFailedTrialCount`` may change. A
    finished experiment with a changed spec restarts only when it succeeded by reaching
    ``maxTrialCount``, its ``resumePolicy`` is LongRunning or FromVolume, and the new
    ``maxTrialCount`` exceeds the number of trials it already has.

    Annotations (Katib lets them change): those in `FIXED_ANNOTATIONS` may not change, the
    others are stored anew on an unfinished experiment; a finished one is not restarted for
    them alone (they only matter while trials run). ``stored_annotations`` None: stored
    before tuner kept them, so none is refused and the file's are stored.
    """
    diff = spec_difference(stored_spec, new_spec)
    if diff:
        return ResumeDecision(
            "refuse",
            f"{diff}: only spec.{', spec.'.join(EDITABLE_FIELDS)} may change on an existing "
            "experiment; use a new metadata.name (or another --db) for a different experiment",
        )
    new_annotations = new_annotations or {}
    fixed = () if stored_annotations is None else FIXED_ANNOTATIONS
    for key in fixed:
        before = (stored_annotations or {}).get(key)
        if before != new_annotations.get(key):
            return ResumeDecision(
                "refuse",
                f"metadata.annotations[{key!r}]: stored {_show(before)}, "
                f"file {_show(new_annotations.get(key))}: it may not change on an existing "
                "experiment (the trials' checkpoints are on the volume it names); use a new "
                "metadata.name (or another --db) for a different experiment",
            )
    changed = any(stored_spec.get(k) != new_spec.get(k) for k in EDITABLE_FIELDS)
    if not finished:
        relabelled = bool(annotation_changes(stored_annotations, new_annotations))
        return ResumeDecision("continue", spec_changed=changed or relabelled)
    if not changed:
        return ResumeDecision("done")
    policy = new_spec.get("resumePolicy") or "Never"
    if not (succeeded and reason == REASON_MAX_TRIALS_REACHED and policy in RESTARTABLE_POLICIES):
        return ResumeDecision(
            "refuse",
            f"spec.maxTrialCount: the experiment already finished ({reason}) and can be restarted "
            "only if it succeeded by reaching max trials and spec.resumePolicy is LongRunning "
            f"or FromVolume (it is {policy})",
        )
    new_max = new_spec.get("maxTrialCount")
    if new_max is not None and new_max <= total_trials:
        return ResumeDecision(
            "refuse",
            f"spec.maxTrialCount: {new_max} must be greater than the experiment's trial count "
            f"{total_trials} to restart it",
        )
    return ResumeDecision("restart", spec_changed=True)
