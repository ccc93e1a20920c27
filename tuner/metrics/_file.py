"""Katib's File collector: the trial writes its metrics to a file (text ``name=value`` lines
or JSON lines), read as it grows; and where that file is for a trial run on this machine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tuner.metrics._collector import CollectorCheckpoint, CollectorConfig, StdOutCollector
from tuner.metrics._jsonlines import JsonLineParser
from tuner.metrics._types import MetricsError

METRICS_FILE_ENV = "TUNER_METRICS_FILE"
"""The trial's metrics file (File collector), set in the trial's environment."""

REMAPPED_FILE_NAME = "metrics.log"
"""The metrics file's name inside the trial's own directory when its path is remapped."""

_TRIAL_NAME_REF = "${trialSpec.Name}"
_NAMESPACE_REF = "${trialSpec.Namespace}"


def trial_metrics_path(
    spec_path: str, trial_name: str, namespace: str, trial_dir: Path | None
) -> tuple[Path, bool]:
    """Where trial ``trial_name`` writes its metrics file; and whether that is ``spec_path``.

    In Katib every pod has its own filesystem, so the one ``fileSystemPath.path`` of the
    experiment (default ``/var/log/katib/metrics.log``) is a different file per trial. On one
    machine it would be shared by all trials, so it is **remapped** to
    ``<trial_dir>/metrics.log``. A path that names the trial (``${trialSpec.Name}``, with
    ``${trialSpec.Namespace}`` also replaced) is unique per trial and kept as written.
    """
    if _TRIAL_NAME_REF in spec_path:
        rendered = spec_path.replace(_TRIAL_NAME_REF, trial_name)
        return Path(rendered.replace(_NAMESPACE_REF, namespace)), False
    if trial_dir is None:
        raise MetricsError(
            f"metricsCollectorSpec.source.fileSystemPath.path: {spec_path!r} would be shared"
            f" by every trial here, and the executor has no per-trial directory to move it to;"
            f" put {_TRIAL_NAME_REF} in the path to make it unique per trial"
        )
    return trial_dir / REMAPPED_FILE_NAME, True


class FileCollector(StdOutCollector):
    """Katib's File collector: ``config.file_path`` in ``config.file_format`` (``TEXT``: the
    StdOut collector's format and filters; ``JSON``: one object per line, values numbers or
    numeric strings), followed as the trial writes it and resumable from a checkpoint like
    the StdOut collector. A file that does not exist yet reads as empty."""

    kind = "File"
    reads_metrics_file = True
    needs_shared_host = "reads the metrics file on this machine"

    def __init__(self, config: CollectorConfig, checkpoint: CollectorCheckpoint | None = None):
        if config.file_path is None:
            raise MetricsError(
                "metricsCollectorSpec.source.fileSystemPath.path: the File collector needs the"
                " trial's metrics file"
            )
        file_format = str(getattr(config.file_format, "value", config.file_format))
        if file_format not in ("TEXT", "JSON"):
            raise MetricsError(
                f"metricsCollectorSpec.source.fileSystemPath.format: {file_format!r} is not a"
                " metrics file format; use TEXT or JSON"
            )
        text = file_format == "TEXT"
        super().__init__(
            # The metrics file, never the trial's output.
            dataclasses.replace(
                config,
                log_path=config.file_path,
                open_output=None,
                filters=config.filters if text else (),
            ),
            checkpoint,
        )
        if not text:
            start = checkpoint or CollectorCheckpoint()
            self._parser = JsonLineParser(  # type: ignore[assignment]
                config.metric_names, start_position=start.position, start_steps=start.steps
            )
