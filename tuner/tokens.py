"""Per-trial report tokens: a trial may push metrics (``tuner.report_metrics``) for itself
only. The controller gives each trial ``HMAC(key, trial name)`` in its environment; the
DBManager recomputes it and refuses a report whose token is not the named trial's
(PERMISSION_DENIED). Reports without a token (Katib's SDK) are accepted only for
experiments that allow them.

Cheap to import (standard library only): ``tuner.report_metrics`` runs inside trials.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

TRIAL_TOKEN_ENV = "TUNER_TRIAL_TOKEN"
"""The trial's report token, set in the environment of every trial that may push metrics."""

TOKEN_METADATA_KEY = "tuner-trial-token"
"""gRPC metadata of a ReportObservationLog call carrying the trial's token (metadata keeps
the wire messages Katib's own)."""

ALLOW_TOKENLESS_ANNOTATION = "tuner.kubeflow.org/allow-tokenless-reports"
"""Experiment annotation: ``"true"`` accepts reports without a token for its trials (what
Katib's SDK sends). Anyone who can reach the DBManager can then report for those trials."""

ALLOW_TOKENLESS_ENV = "TUNER_ALLOW_TOKENLESS_REPORTS"
"""Controller environment: ``true`` makes tokenless reports the default for every
experiment that does not set the annotation (the Katib-compatibility overlay sets it)."""

_KEY_BYTES = 32


def allows_tokenless(
    annotations: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> bool:
    """Whether an experiment with ``annotations`` accepts tokenless reports: its annotation
    if set (``"true"``/``"false"``), else the controller's ``TUNER_ALLOW_TOKENLESS_REPORTS``."""
    value = annotations.get(ALLOW_TOKENLESS_ANNOTATION)
    if value is None:
        value = (os.environ if environ is None else environ).get(ALLOW_TOKENLESS_ENV, "")
    return value.strip().lower() == "true"


@dataclass(frozen=True)
class ReportPolicy:
    """Who may report for which trial, as one DBManager enforces it.

    ``key``: the secret of this experiment's tokens. ``experiment``: when set, tokenless
    reports (if ``allow_tokenless``) are accepted only for this experiment's trials.
    """

    key: bytes = field(repr=False)
    experiment: str | None = None
    allow_tokenless: bool = False

    def token(self, trial_name: str) -> str:
        """The token of ``trial_name``; given to that trial only."""
        return hmac.new(self.key, trial_name.encode("utf-8"), hashlib.sha256).hexdigest()

    def is_token_of(self, trial_name: str, token: str) -> bool:
        return hmac.compare_digest(self.token(trial_name), token)


def load_key(path: Path | None) -> bytes:
    """The token key kept in ``path`` (created with mode 0600 when missing), so that a
    controller restarted after a crash recognises the tokens of the trials it adopts; a
    fresh random key when ``path`` is None or cannot be used."""
    if path is None:
        return secrets.token_bytes(_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            info = path.lstat()
            key = path.read_bytes()
        except OSError:
            return secrets.token_bytes(_KEY_BYTES)
        # Only a key file of ours that nobody else can read: in a shared temporary
        # directory another user could have planted one.
        private = info.st_uid == os.getuid() and not info.st_mode & 0o077
        ok = private and path.is_file() and not path.is_symlink() and len(key) == _KEY_BYTES
        return key if ok else secrets.token_bytes(_KEY_BYTES)
    except OSError:
        return secrets.token_bytes(_KEY_BYTES)
    key = secrets.token_bytes(_KEY_BYTES)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def forget_key(path: Path | None) -> None:
    """Remove a key file once no trial of the run can report any more."""
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()
