"""The Experiment annotations tuner reads (tuner extensions beyond Katib); a module of its own
so that the command line's help can name them without loading the models."""

from __future__ import annotations

MAX_OBSERVATIONS_ANNOTATION = "tuner.kubeflow.org/max-observations-per-metric"
"""Experiment annotation (tuner extension): cap each trial's stored reports of each metric
at about this many, evenly spread, keeping what decisions read (docs/controller.md,
"Huge logs"). Unset: every report is stored, as in Katib."""
