"""A multi-fidelity trial for bench_multifidelity.py: prints a learning curve of a test
function, one ``epoch N: loss=V`` line per epoch (the StdOut collector's step N-1).

    python benchmarks/_curve_trial.py FUNCTION SEED EPOCHS SECONDS_PER_EPOCH x1 x2 ...

The value at epoch e of E is ``f(x) + offset / e + noise * z / sqrt(e)``: it falls towards
the true value and its noise shrinks with training; z is drawn from (seed, x, e), so the same
configuration gives the same curve in every run and in the Optuna baselines.
"""

from __future__ import annotations

import sys
import time

from _functions import FUNCTIONS  # a sibling: a script's own folder is first on sys.path

# function -> (offset, noise): about 5 % and 20 % of the function's spread over its domain.
SCALES = {"branin": (15.0, 8.0), "hartmann6": (0.15, 0.2), "rosenbrock4": (5000.0, 2000.0)}


def curve(function: str, seed: int, x: list[float], epochs: int) -> list[float]:
    import numpy as np

    f = FUNCTIONS[function](x)
    offset, noise = SCALES[function]
    key = [seed, *(int(abs(v) * 1e6) for v in x)]
    z = np.random.default_rng(key).standard_normal(epochs)
    return [f + offset / e + noise * float(z[e - 1]) / e**0.5 for e in range(1, epochs + 1)]


def main(argv: list[str]) -> None:
    function, seed, pause = argv[0], int(argv[1]), float(argv[3])
    epochs = max(1, round(float(argv[2])))  # hyperband may give its resource as a double
    x = [float(v) for v in argv[4:]]
    for epoch, loss in enumerate(curve(function, seed, x, epochs), start=1):
        print(f"epoch {epoch}: loss={loss!r}", flush=True)
        time.sleep(pause)


if __name__ == "__main__":
    main(sys.argv[1:])
