"""Metrics collectors: one per trial, turning its output into MetricPoints while it runs.
The registry keyed by Katib's collector kind (``_registry.py``) picks the implementation."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from tuner.metrics._follow import DEFAULT_CHUNK_BYTES, LogFollower
from tuner.metrics._stdout import StdOutParser
from tuner.metrics._types import MetricPoint, MetricsError


class OutputReader(Protocol):
    """A trial's output read as it grows (``tuner.executors.TrialOutput``; a
    :class:`LogFollower` is one): ``read_new`` gives the next bytes, ``b""`` when none yet."""

    def read_new(self, max_bytes: int | None = None) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class CollectorConfig:
    """What a collector needs to know about one trial.

    ``metric_names``: the objective metric first, then the additional metrics.
    ``filters``: ``metricsCollectorSpec.source.filter.metricsFormat`` (empty: Katib's
    default). The StdOut collector reads the trial's combined stdout/stderr through
    ``open_output(position)`` (``Executor.open_output``: a pod log, a local file...) when
    it is set, else from the file ``log_path`` (``Executor.log_path``). ``file_path`` /
    ``file_format``: for the File collector.
    """

    metric_names: Sequence[str]
    filters: Sequence[str] = ()
    log_path: Path | None = None
    file_path: Path | None = None
    file_format: str = "TEXT"
    open_output: Callable[[int], OutputReader] | None = None


@dataclass(frozen=True)
class CollectorCheckpoint:
    """Where a collector stopped: store it with the points it returned (same transaction),
    and a collector created from it after a restart neither loses nor repeats a report."""

    position: int = 0
    steps: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "steps": dict(self.steps)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CollectorCheckpoint:
        position, steps = data.get("position", 0), data.get("steps", {})
        if not isinstance(position, int) or position < 0 or not isinstance(steps, Mapping):
            raise MetricsError(f"checkpoint: {dict(data)!r} is not a collector checkpoint")
        return cls(position, {str(k): int(v) for k, v in steps.items()})


class MetricsCollector(abc.ABC):
    """Collects one trial's metrics.

    Call order: create it when the trial is launched (or adopted, with the stored
    checkpoint); call :meth:`collect` as often as wanted while the trial runs; after the
    trial has ended, call ``collect(final=True)`` once (it reads everything that is left,
    including a last line without newline); store :attr:`checkpoint` with the points each
    call returned; :meth:`close` at the end. Not thread-safe: one thread per collector.
    Raises :class:`MetricsError` for a wrong configuration, at construction.

    Capabilities, asked by the controller instead of the kind's name (defaults here):

    - :attr:`reads_output` (True): reads what the trial writes, so the trial's observations
      can be rebuilt by reading again from the start; pushed ones cannot.
    - :attr:`reads_metrics_file` (False): reads the trial's metrics file
      (``CollectorConfig.file_path``), which the controller then places per trial.
    - :attr:`needs_shared_host` (None): why it works only with an executor whose trials
      share the controller's machine (``Executor.shares_host``); None: any executor.
    - :attr:`pushes_to_dbmanager` (False): the trial pushes its metrics to a DBManager, so
      a DBManager the trials can reach from anywhere (``tuner controller
      --dbmanager-address``) lifts ``needs_shared_host``.
    """

    kind: ClassVar[str]
    reads_output: ClassVar[bool] = True
    """Whether the collector reads what the trial writes (its log or a file). Such a trial's
    observations can be rebuilt by reading again from the start; pushed ones cannot."""
    reads_metrics_file: ClassVar[bool] = False
    """Whether the collector reads the trial's metrics file rather than its output."""
    needs_shared_host: ClassVar[str | None] = None
    """Why trials must run on the controller's machine for this collector (a phrase that
    follows the kind: "reads the metrics file on this machine"), or None."""
    pushes_to_dbmanager: ClassVar[bool] = False
    """Whether the trial pushes its metrics to a DBManager (which then need not be local)."""

    @abc.abstractmethod
    def collect(self, *, final: bool = False, max_bytes: int | None = None) -> list[MetricPoint]:
        """The reports written since the last call. ``max_bytes`` bounds the output read in
        this call (None: up to what is there now); ignored when ``final``."""

    @property
    @abc.abstractmethod
    def checkpoint(self) -> CollectorCheckpoint:
        """Where to resume after this call's points are stored."""

    @property
    def bytes_read(self) -> int:
        """Bytes of output read so far by this collector (0 for one that reads none): a
        call that leaves it unchanged found nothing new."""
        return 0

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release open files."""

    def __enter__(self) -> MetricsCollector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class StdOutCollector(MetricsCollector):
    """Katib's StdOut collector: the text format on the trial's stdout and stderr, read as
    it grows, through the executor (``open_output``) or from its log file (``log_path``)."""

    kind = "StdOut"

    def __init__(self, config: CollectorConfig, checkpoint: CollectorCheckpoint | None = None):
        start = checkpoint or CollectorCheckpoint()
        self._parser = StdOutParser(
            config.metric_names,
            config.filters,
            start_position=start.position,
            start_steps=start.steps,
        )
        self._bytes_read = 0
        self._follower: OutputReader
        if config.open_output is not None:
            self._follower = config.open_output(start.position)
        elif config.log_path is not None:
            self._follower = LogFollower(config.log_path, start.position)
        else:
            raise MetricsError(
                "log_path: the StdOut collector needs the trial's output (open_output) or its"
                " log file"
            )

    def collect(self, *, final: bool = False, max_bytes: int | None = None) -> list[MetricPoint]:
        points: list[MetricPoint] = []
        budget = None if final else max_bytes
        while budget is None or budget > 0:
            chunk = self._follower.read_new(
                None if budget is None else min(budget, DEFAULT_CHUNK_BYTES)
            )
            if not chunk:
                break
            self._bytes_read += len(chunk)
            points += self._parser.feed(chunk)
            if budget is not None:
                budget -= len(chunk)
        if final:
            points += self._parser.close()
        return points

    @property
    def checkpoint(self) -> CollectorCheckpoint:
        return CollectorCheckpoint(self._parser.position, self._parser.steps)

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    @property
    def discarded_lines(self) -> int:
        return self._parser.discarded_lines

    def close(self) -> None:
        self._follower.close()
