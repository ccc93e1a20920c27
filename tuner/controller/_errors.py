"""The controller's exception hierarchy: everything `tuner.controller` raises derives from it."""

from __future__ import annotations

from tuner.errors import TunerError


class ControllerError(TunerError):
    """Running an experiment failed for a reason outside the experiment's own trials."""


class ExperimentRefusedError(ControllerError):
    """The experiment cannot be run as given; nothing was written to the store.

    Raised for settings the suggestion service refuses (INVALID_ARGUMENT) and for files that
    ask an existing experiment for a change it cannot take (a differing spec field, a restart
    its resumePolicy forbids). The CLI maps it to exit code 2.
    """


class SuggestionError(ControllerError):
    """The suggestion service failed, after retries where retrying made sense.

    ``code`` is the gRPC status code name (e.g. ``"UNAVAILABLE"``), ``retryable`` whether a
    later attempt may succeed unchanged.
    """

    def __init__(self, message: str, *, code: str = "UNKNOWN", retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class InvalidSettingsError(SuggestionError, ExperimentRefusedError):
    """The suggestion service refused the algorithm settings (gRPC INVALID_ARGUMENT)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="INVALID_ARGUMENT", retryable=False)
