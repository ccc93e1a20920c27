"""Hypothesis profiles of the fuzzing suite: ``ci`` (the default, bounded so that ``make
test`` stays quick) and ``fuzz`` (``make fuzz``: many more inputs per test). Select with
``TUNER_FUZZ_PROFILE``; each test asks ``scaled(n)`` for its number of inputs.

The ``ci`` profile is derandomized (the same inputs every run); ``fuzz`` is random.
Inputs that once broke something are kept as ``@example`` seeds on the tests, so they are
tried on every run whatever the profile."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = settings(
    deadline=None,  # real gRPC and subprocess-free CLI calls vary with machine load
    database=None,  # no .hypothesis/ directory in the tree; seeds live in the tests
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
# `ci` draws the same inputs on every run, so that a submission's CI cannot fail on a new
# random find; `fuzz` explores anew each time, and what it finds becomes an @example seed.
settings.register_profile("ci", _COMMON, derandomize=True)
settings.register_profile("fuzz", _COMMON)
PROFILE = os.environ.get("TUNER_FUZZ_PROFILE", "ci")
settings.load_profile(PROFILE)
