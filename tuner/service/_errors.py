"""The service's exception hierarchy: everything `tuner.service` raises derives from it."""

from __future__ import annotations

from tuner.errors import TunerError


class ServiceError(TunerError):
    """The controller service, or a submission to it, cannot go on."""


class SubmitError(ServiceError):
    """A submission was refused; nothing was written. ``problems`` lists every reason,
    each a line that names the experiment (and the field, where there is one)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class AddressError(ServiceError, ValueError):
    """A ``HOST:PORT`` listen address that cannot be parsed or bound."""
