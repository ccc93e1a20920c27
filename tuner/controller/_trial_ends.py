"""How a trial's end becomes what the store records: its status and message from how its
process ended, the objective's value, and the last lines of a failed trial's output."""

from __future__ import annotations

from datetime import datetime

from tuner.controller._decide import TRIAL_REASON_DEADLINE, TRIAL_REASON_LOST
from tuner.executors import ExitReason, Outcome
from tuner.redact import mask_urls
from tuner.store import MetricSummary, TrialStatus

# A failed trial's message ends with the last lines of its output (stdout and stderr as
# its log holds them), read from at most this many final bytes.
OUTPUT_TAIL_BYTES = 8192
TAIL_LINES = 15
TAIL_LINE_CHARS = 300


def with_output_tail(message: str, tail: str) -> str:
    """A failed trial's message followed by the last lines of its output, if any."""
    if not tail:
        return message
    return f"{message}; the last lines of its output:\n{tail}"


def output_tail_lines(data: bytes) -> str:
    """The last `TAIL_LINES` lines of ``data`` (a trial's output), each cut to
    `TAIL_LINE_CHARS`, with URL passwords masked and control characters dropped, as the
    store and a terminal can show them."""
    text = data.decode("utf-8", errors="replace")
    lines = [line.rstrip() for line in text.splitlines()]
    if len(data) >= OUTPUT_TAIL_BYTES and lines:
        lines = lines[1:]  # the first line read is probably a part of one
    lines = [_printable(line) for line in lines if line.strip()][-TAIL_LINES:]
    return "\n".join(
        line if len(line) <= TAIL_LINE_CHARS else line[: TAIL_LINE_CHARS - 3] + "..."
        for line in lines
    )


def _printable(line: str) -> str:
    return mask_urls("".join(c if c.isprintable() or c == "\t" else "?" for c in line))


def objective_value(summary: MetricSummary, strategy: str) -> float:
    """A metric's trial value under its strategy (min, max, else the latest)."""
    return {"min": summary.min, "max": summary.max}.get(strategy, summary.latest)


def aware(moment: datetime | None) -> bool:
    """Whether ``moment`` is a time with a zone (the store takes only those)."""
    return moment is not None and moment.tzinfo is not None


def end_status(
    outcome: Outcome, has_objective: bool, metric: str, kill_reason: str | None
) -> tuple[TrialStatus, str]:
    """The trial's end state and message from how its process ended."""
    text = outcome.message or ""
    if outcome.reason is ExitReason.COMPLETED:
        if has_objective:
            return TrialStatus.SUCCEEDED, text or "exited with code 0"
        return TrialStatus.METRICS_UNAVAILABLE, (
            f"exited with code 0 but never reported the objective metric {metric!r}"
        )
    if outcome.reason is ExitReason.DEADLINE_EXCEEDED:
        detail = text or "activeDeadlineSeconds passed"
        return TrialStatus.FAILED, f"{TRIAL_REASON_DEADLINE}: {detail}"
    if outcome.reason is ExitReason.KILLED:
        return TrialStatus.KILLED, f"killed: {kill_reason}" if kill_reason else (text or "killed")
    if outcome.reason is ExitReason.LOST:
        return TrialStatus.FAILED, f"{TRIAL_REASON_LOST}: {text}"
    detail = text or (
        f"exited with code {outcome.exit_code}"
        if outcome.exit_code is not None
        else f"ended by signal {outcome.signal}"
    )
    return TrialStatus.FAILED, detail
