"""`python -m tuner.pipeline`: the container step, see `tuner.pipeline.step.main`."""

from __future__ import annotations

import sys

from tuner.pipeline.step import main

sys.exit(main())
