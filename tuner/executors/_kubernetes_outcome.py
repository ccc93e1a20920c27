"""How a trial's Job ended, judged as Katib does from the Job's JSON (failure condition first,
then success condition), or from its disappearance."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from tuner.executors._base import ExitReason, Outcome
from tuner.executors._kubernetes_informer import JobState
from tuner.executors._kubernetes_jobs import JobReference

DEADLINE_REASON = "DeadlineExceeded"


def judge(state: JobState, job_ref: JobReference, *, kill_requested: bool) -> Outcome | None:
    """The outcome of a Job as last seen, None while it runs (Katib's order: failure first)."""
    job, settings = state.job, job_ref.settings
    status = job.get("status") or {}
    started = _time(status.get("startTime"))
    replaced = job_ref.uid is not None and job_uid(job) not in (None, job_ref.uid)
    if not replaced:
        failed = settings.failure.match(job)
        if failed is not None:
            reason = str(failed.get("reason") or "Failed")
            message = str(failed.get("message") or "")
            return Outcome(
                ExitReason.DEADLINE_EXCEEDED if reason == DEADLINE_REASON else ExitReason.FAILED,
                message=f"{reason}: {message}" if message else reason,
                started_at=started,
                finished_at=_time(failed.get("lastTransitionTime")),
            )
        succeeded = settings.success.match(job)
        if succeeded is not None:
            return Outcome(
                ExitReason.COMPLETED,
                message=str(succeeded.get("message") or ""),
                started_at=started,
                finished_at=_time(status.get("completionTime"))
                or _time(succeeded.get("lastTransitionTime")),
            )
    if state.deleted or replaced:
        if kill_requested:
            return Outcome(
                ExitReason.KILLED,
                message="killed on request: Job and pods deleted",
                started_at=started,
                finished_at=datetime.now(timezone.utc),
            )
        name = f"{settings.namespace}/{job_ref.job_name}"
        return Outcome(
            ExitReason.LOST,
            message=f"lost: Job {name} was deleted before it finished, not by tuner",
            started_at=started,
        )
    return None


def job_name(job: Mapping[str, Any]) -> str:
    return str((job.get("metadata") or {}).get("name") or "")


def job_uid(job: Mapping[str, Any] | None) -> str | None:
    uid = ((job or {}).get("metadata") or {}).get("uid")
    return str(uid) if uid else None


def _time(value: Any) -> datetime | None:
    """An RFC 3339 API timestamp as an aware datetime; None if absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
