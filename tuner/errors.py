"""`TunerError`, the root of every exception tuner raises on purpose.

Each package has its own hierarchy (`tuner.store.StoreError`, `tuner.spec.SpecError`,
`suggestion.algorithms.AlgorithmError`, ...) whose base derives from `TunerError`, so a caller
can tell tuner's refusals from bugs with one ``except TunerError``. Anything else that
escapes is a bug. Imports nothing, so every layer may use it.
"""

from __future__ import annotations

__all__ = ["TunerError"]


class TunerError(Exception):
    """Base of every error tuner raises on purpose; the cause, if any, is ``__cause__``."""
