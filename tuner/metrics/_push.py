"""The Push and None collectors: nothing is read from the trial's output, because the trial
reports its metrics itself to the controller's DBManager (``tuner.report_metrics``)."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import ClassVar

from tuner.metrics._collector import CollectorCheckpoint, CollectorConfig, MetricsCollector
from tuner.metrics._types import MetricPoint

TRIAL_NAME_ENV = "KATIB_TRIAL_NAME"
"""The trial's name, set in every trial's environment (Katib's SDK reads the same name)."""

DBMANAGER_ADDRESS_ENV = "TUNER_DBMANAGER_ADDRESS"
"""``host:port`` of the DBManager gRPC service the trial reports to; set in every local trial."""

STEP_METADATA_KEY = "tuner-step"
"""gRPC metadata of a ReportObservationLog call: the training step of all its metrics.

Katib's MetricLog has no step field; metadata keeps the wire messages Katib's own. Without
it, the DBManager numbers a trial's reports of each metric 0, 1, 2... as the collectors do.
"""

WITH_STEPS_METADATA_KEY = "tuner-with-steps"
"""gRPC metadata of a GetObservationLog call: ``true`` asks for each log's step, which the
DBManager sends in the trailing metadata ``tuner-steps`` (comma-separated, one per metric log
of the reply, empty for a report stored without a step). An early-stopping service that
measures resource by steps (asha) asks for them."""

STEPS_METADATA_KEY = "tuner-steps"

REPORT_ID_METADATA_KEY = "tuner-report-id"
"""gRPC metadata: a client-chosen id of one report, so that a retried call is stored once."""


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds (``2024-05-01T12:00:00.250000Z``): a time stamp of
    Katib's ``MetricLog``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_value(value: float) -> str:
    """Katib's wire form of a metric value: a decimal string Go's ParseFloat reads back
    exactly (``NaN``, ``+Inf``, ``-Inf`` for the non-finite)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class PushCollector(MetricsCollector):
    """Katib's ``Push`` collector: the trial pushes its metrics through the DBManager's
    ``ReportObservationLog``; the controller reads them back from the store when the trial
    ends. :meth:`collect` never returns anything."""

    kind = "Push"
    reads_output: ClassVar[bool] = False
    needs_shared_host: ClassVar[str | None] = (
        "needs the trial to reach the controller's DBManager on 127.0.0.1"
    )
    pushes_to_dbmanager: ClassVar[bool] = True

    def __init__(self, config: CollectorConfig, checkpoint: CollectorCheckpoint | None = None):
        self._checkpoint = checkpoint or CollectorCheckpoint()

    def collect(self, *, final: bool = False, max_bytes: int | None = None) -> list[MetricPoint]:
        return []

    @property
    def checkpoint(self) -> CollectorCheckpoint:
        return self._checkpoint


class NoneCollector(PushCollector):
    """Katib's ``None`` collector: no collection. As in Katib, where ``None`` was the push
    mode before ``Push`` existed, whatever the trial reports to the DBManager still counts."""

    kind = "None"
    # Nothing is asked of the trial: it may push where it can, or report nothing.
    needs_shared_host = None
