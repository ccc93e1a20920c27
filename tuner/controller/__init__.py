"""The controller: drives an experiment to its end, Katib's experiment controller as a loop.

`Controller(store, experiment, suggestions, executor).run()` creates or resumes the
experiment in the store, keeps up to ``parallelTrialCount`` trials running, and finishes it
in Katib's order (goal, failures, budget, exhausted search space). docs/controller.md
describes the loop, what counts against the budget, resume semantics and the output schema.
"""

from __future__ import annotations

from tuner.controller._checks import check_algorithms
from tuner.controller._controller import Controller, Snapshot
from tuner.controller._decide import (
    EDITABLE_FIELDS,
    FIXED_ANNOTATIONS,
    REASON_FAILED,
    REASON_GOAL_REACHED,
    REASON_MAX_TRIALS_REACHED,
    REASON_RESTARTING,
    REASON_RUNNING,
    REASON_SUGGESTION_END_REACHED,
    Completion,
    Limits,
    ResumeDecision,
    TrialCounts,
    annotation_changes,
    resume_decision,
    spec_difference,
)
from tuner.controller._dry_run import dry_run_documents, first_trials
from tuner.controller._errors import (
    ControllerError,
    ExperimentRefusedError,
    InvalidSettingsError,
    SuggestionError,
)
from tuner.controller._lease import own_owner, owner_is_dead
from tuner.controller._result import SCHEMA_VERSION, RunResult
from tuner.controller._suggestions import RetryPolicy, SuggestionClient, Suggestions

__all__ = [
    "EDITABLE_FIELDS",
    "FIXED_ANNOTATIONS",
    "REASON_FAILED",
    "REASON_GOAL_REACHED",
    "REASON_MAX_TRIALS_REACHED",
    "REASON_RESTARTING",
    "REASON_RUNNING",
    "REASON_SUGGESTION_END_REACHED",
    "SCHEMA_VERSION",
    "Completion",
    "Controller",
    "ControllerError",
    "ExperimentRefusedError",
    "InvalidSettingsError",
    "Limits",
    "ResumeDecision",
    "RetryPolicy",
    "RunResult",
    "Snapshot",
    "SuggestionClient",
    "SuggestionError",
    "check_algorithms",
    "Suggestions",
    "TrialCounts",
    "dry_run_documents",
    "first_trials",
    "own_owner",
    "owner_is_dead",
    "annotation_changes",
    "resume_decision",
    "spec_difference",
]
