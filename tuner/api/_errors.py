"""Errors the Python API raises when running or loading an experiment (building one raises
``tuner.spec.SpecError``); each keeps the error it translates as its ``__cause__``. All derive
from ``tuner.errors.TunerError``; ``tuner.load()`` raises the store's
``ExperimentNotFoundError`` for an unknown name."""

from __future__ import annotations

from tuner.errors import TunerError


class InvalidExperimentError(TunerError, ValueError):
    """The run was refused before anything was written: algorithm settings the suggestion
    service rejects, a template the executor cannot run, or a change to a stored experiment
    of the same name that it cannot take (see docs/controller.md, "Resume")."""


class RunError(TunerError):
    """The run could not go on: database error, suggestion service unreachable, another
    controller running the experiment, an executor failure. Running it again resumes it."""
