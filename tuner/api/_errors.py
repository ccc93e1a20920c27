"""Errors the Python API raises when running or loading an experiment (building one raises
``tuner.spec.SpecError``); each keeps the error it translates as its ``__cause__``."""

from __future__ import annotations


class TunerError(Exception):
    """Base of the errors of ``Experiment.run()`` and ``tuner.load()``."""


class InvalidExperimentError(TunerError, ValueError):
    """The run was refused before anything was written: algorithm settings the suggestion
    service rejects, a template the executor cannot run, or a change to a stored experiment
    of the same name that it cannot take (see docs/controller.md, "Resume")."""


class RunError(TunerError):
    """The run could not go on: database error, suggestion service unreachable, another
    controller running the experiment, an executor failure. Running it again resumes it."""


class ExperimentNotFoundError(TunerError, LookupError):
    """``tuner.load()`` found no experiment of that name in the database."""
