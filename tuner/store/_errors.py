"""The store's exception hierarchy: everything `tuner.store` raises derives from `StoreError`."""

from __future__ import annotations

from tuner.errors import TunerError


class StoreError(TunerError):
    """A store operation failed.

    `retryable` is True when the same call may succeed later unchanged (the database was
    locked, busy or unreachable); False for errors that retrying will not fix.
    """

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class ExperimentNotFoundError(StoreError, LookupError):
    """No experiment has the given name."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"experiment {name!r} not found in the store; `tuner get experiments` lists the"
            " known experiments"
        )
        self.name = name


class ExperimentExistsError(StoreError):
    """An experiment with the given name is already stored."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"experiment {name!r} already exists in the store; choose another"
            " metadata.name or delete the stored one first"
        )
        self.name = name


class TrialNotFoundError(StoreError, LookupError):
    """No trial has the given name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"trial {name!r} not found in the store")
        self.name = name


class TrialExistsError(StoreError):
    """A trial with the given name is already stored (or repeated within one batch)."""

    def __init__(self, name: str, detail: str = "already exists in the store") -> None:
        super().__init__(f"trial {name!r} {detail}; trial names must be unique")
        self.name = name


class LeaseLostError(StoreError):
    """A fenced write was refused because another controller now holds the experiment's
    lease (see `Store.fenced`). Nothing of the transaction was written."""
