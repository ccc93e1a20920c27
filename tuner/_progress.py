"""What `tuner run` and `Experiment.run(progress=True)` show: a progress bar on stderr while
it runs, a trial table at the end (shared by the CLI and the Python API)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from tuner.controller import RunResult, Snapshot
from tuner.store import TrialStatus

if TYPE_CHECKING:
    from rich.progress import Progress

MAX_ROWS = 25


class View:
    """Progress to stderr (only when ``enabled``), results to stdout."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        # Not a terminal (a pipe, a CI log): wide enough for the table, rich's 80 is not.
        self.out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
        self._progress: Progress | None = None
        self._task: Any = None

    @contextlib.contextmanager
    def running(self, name: str, total: int | None) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        # Only a bar needs rich.progress (`tuner run --no-progress`, a pipe: never imported).
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._progress = progress
        self._task = progress.add_task(name, total=total, detail="starting")
        try:
            with progress:
                yield
        finally:
            self._progress = None

    def update(self, snapshot: Snapshot) -> None:
        if self._progress is None:
            return
        c = snapshot.counts
        detail = f"running {c.running + c.created}  failed {c.failed_total}"
        if snapshot.best_value is not None:
            detail += f"  best {_fmt(snapshot.best_value)}"
        self._progress.update(self._task, completed=c.completed, detail=detail)

    def summary(self, result: RunResult) -> None:
        exp = result.experiment
        metric = exp.experiment.spec.objective.objective_metric_name
        table = Table(title=f"Experiment {exp.name}: {exp.status.value} ({exp.reason})")
        table.add_column("trial")
        table.add_column("status")
        table.add_column(metric, justify="right")
        table.add_column("parameters")
        table.add_column("message", overflow="fold")
        shown = _rows(result)
        for trial in shown:
            mark = " *" if result.best_trial and trial.name == result.best_trial.name else ""
            table.add_row(
                trial.name + mark,
                trial.status.value,
                _fmt(trial.objective_value),
                " ".join(f"{k}={v}" for k, v in trial.parameters.items()),
                "" if trial.status is TrialStatus.SUCCEEDED else (trial.message or ""),
            )
        self.out.print(table)
        hidden = len(result.trials) - len(shown)
        if hidden > 0:
            self.out.print(f"({hidden} more trials not shown; --output writes the full result)")
        counts = ", ".join(f"{n} {s}" for s, n in result.counts.by_status().items() if n)
        self.out.print(f"{exp.message}")
        self.out.print(f"trials: {counts or 'none'}")
        if result.best_trial is None:
            self.out.print("best trial: none (no trial reported the objective metric)")
        else:
            params = ", ".join(f"{k}={v!r}" for k, v in (result.best_parameters or {}).items())
            self.out.print(
                f"best trial: {result.best_trial.name}  {metric}="
                f"{_fmt(result.best_trial.objective_value)}  {params}"
            )
        if result.pareto is not None:
            self.out.print(
                f"Pareto front: {len(result.pareto)} trial(s); 'tuner best {exp.name}' lists them"
            )


def _rows(result: RunResult) -> list[Any]:
    """All trials if few; else the best ones by objective, then the others in order."""
    trials = result.trials
    if len(trials) <= MAX_ROWS:
        return trials
    direction = result.experiment.experiment.spec.objective.type
    scored = [(t.objective_value, t) for t in trials if t.objective_value is not None]
    scored.sort(key=lambda pair: direction.sort_key(pair[0]))
    return [t for _, t in scored[:MAX_ROWS]] or trials[:MAX_ROWS]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"
