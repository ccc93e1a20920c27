"""Shipping an objective function to local trials with cloudpickle: closures, lambdas,
``__main__`` functions and the data they capture (a numpy array) travel as they are.

Source shipping (``_source.py``) stays for YAML and Kubernetes, where a trial runs in an
image and a pickle written here cannot reach it. A pickled trial gets the file's path and
the function's *fingerprint*, which stands for the function on resume: two runs with the
same fingerprint run the same function, whatever the pickle bytes (they carry the file
name and line numbers of the code, which a notebook's cells change).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FINGERPRINT_FLAG = "--fingerprint"
PICKLED_FLAG = "--pickled"
UNSET_PATH = "(written by Experiment.run)"
"""The ``--pickled`` value of an Experiment's spec before ``run()`` writes the file."""

_lock = threading.Lock()  # cloudpickle's pickle-by-value registry is process-wide


class PickleError(ValueError):
    """The objective cannot be pickled; the message says why."""


@dataclass(frozen=True)
class Pickled:
    """Where a local trial finds the pickled objective, and the function's fingerprint."""

    path: str
    fingerprint: str


def fingerprint(fn: Callable[..., Any]) -> str:
    """A hash of what the function is: its source text (else its pickle), the values it
    closes over and its default arguments. Module-level data it reads is not included."""
    import cloudpickle

    digest = hashlib.sha256()
    try:
        digest.update(inspect.getsource(fn).encode())
    except (OSError, TypeError):
        digest.update(_dumps(fn))
    function = fn if isinstance(fn, types.FunctionType) else None
    cells = [c.cell_contents for c in (function.__closure__ or ())] if function else []
    captured = (cells, getattr(fn, "__defaults__", None), getattr(fn, "__kwdefaults__", None))
    try:
        digest.update(cloudpickle.dumps(captured))
    except Exception as e:  # noqa: BLE001 - anything pickle raises means "cannot travel"
        raise PickleError(f"what it captures cannot be pickled: {e}") from e
    return digest.hexdigest()[:32]


def write(fn: Callable[..., Any], path: str | os.PathLike[str]) -> None:
    """Pickle ``fn`` to ``path`` (atomically: a trial reads the old file or the new one)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = _dumps(fn)
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, target)


def _dumps(fn: Callable[..., Any]) -> bytes:
    import cloudpickle

    # By value, even for a function of an importable module: the trial may not have that
    # module on its path (a test module, a notebook's helper file elsewhere).
    target = fn.func if isinstance(fn, functools.partial) else fn
    module = sys.modules.get(target.__module__) if isinstance(target, types.FunctionType) else None
    by_value = (
        module is not None
        and module.__name__ not in ("__main__", "builtins")
        and not module.__name__.startswith(("tuner.", "suggestion."))
        and module.__name__ not in cloudpickle.list_registry_pickle_by_value()
    )
    with _lock:
        if by_value:
            cloudpickle.register_pickle_by_value(module)
        try:
            return bytes(cloudpickle.dumps(fn))
        except Exception as e:  # noqa: BLE001 - anything pickle raises means "cannot travel"
            raise PickleError(f"it cannot be pickled: {e}") from e
        finally:
            if by_value:
                cloudpickle.unregister_pickle_by_value(module)
