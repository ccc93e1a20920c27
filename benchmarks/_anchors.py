"""Anchors for the suggestion latency benchmark, measured in the same process and run:
decoding the request alone, scikit-optimize's `Optimizer` driven as Katib's service drives
it, and Optuna's `TPESampler` driven directly on the same trials."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from suggestion.service import TrialDecoder
from suggestion.service._convert import trial_bytes
from tuner.protos import api_pb2
from tuner.space import SearchSpace


def decode_seconds(request: api_pb2.GetSuggestionsRequest, space: SearchSpace) -> float:
    """Parse the serialised request and decode every trial into the columns the server
    reads (cold: a new decoder), as the server does (`trial_bytes`, `TrialDecoder.table`)."""
    data = request.SerializeToString()
    start = time.perf_counter()
    parsed = api_pb2.GetSuggestionsRequest.FromString(data)
    TrialDecoder(space, parsed.experiment.spec.objective.objective_metric_name).table(
        trial_bytes(parsed)
    )
    return time.perf_counter() - start


def parse_seconds(request: api_pb2.GetSuggestionsRequest) -> float:
    """Parse the serialised request alone (protobuf's C parser): the floor under decoding."""
    data = request.SerializeToString()
    start = time.perf_counter()
    api_pb2.GetSuggestionsRequest.FromString(data)
    return time.perf_counter() - start


def skopt_seconds(xs: np.ndarray, ys: Sequence[float], count: int, seed: int = 1) -> float:
    """Katib's skopt service: a new `Optimizer` (GP, gp_hedge, auto, 10 initial points) told
    every trial at once, then asked (``n_points=count`` for several, strategy cl_min).

    Katib forces a log-uniform prior on doubles, impossible for [0, 1]: uniform here. BLAS
    is limited to one thread as on our GP path (Katib leaves it unlimited: on a shared
    2-core machine that is slower, not faster)."""
    from skopt import Optimizer
    from skopt.space import Real
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        optimizer = Optimizer(
            [Real(0.0, 1.0, name=f"x{i}") for i in range(xs.shape[1])],
            base_estimator="GP",
            n_initial_points=10,
            acq_func="gp_hedge",
            acq_optimizer="auto",
            random_state=seed,
        )
        optimizer.tell([list(map(float, x)) for x in xs], [float(y) for y in ys])
        if count > 1:
            optimizer.ask(n_points=count, strategy="cl_min")
        else:
            optimizer.ask()
    return time.perf_counter() - start


def optuna_seconds(
    xs: np.ndarray,
    ys: Sequence[float],
    count: int,
    *,
    multivariate: bool,
    seed: int = 1,
) -> tuple[float, float]:
    """(cold, warm) seconds of Optuna's TPESampler with Katib's settings and constant liar.

    cold: build an in-memory study, add every trial, ask ``count`` times; warm: add one new
    completed trial to that study and ask ``count`` times again (what a warm server does).
    """
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    names = [f"x{i}" for i in range(xs.shape[1])]
    distributions = {n: FloatDistribution(0.0, 1.0) for n in names}

    def frozen(x: np.ndarray, y: float) -> optuna.trial.FrozenTrial:
        return create_trial(
            params=dict(zip(names, map(float, x), strict=True)),
            distributions=distributions,
            value=float(y),
        )

    def ask(study: optuna.Study) -> None:
        for _ in range(count):
            study.ask(fixed_distributions=distributions)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        study = optuna.create_study(
            sampler=optuna.samplers.TPESampler(
                n_startup_trials=10,
                n_ei_candidates=24,
                seed=seed,
                multivariate=multivariate,
                constant_liar=True,
            )
        )
        study.add_trials([frozen(x, y) for x, y in zip(xs, ys, strict=True)])
        ask(study)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        study.add_trial(frozen(np.full(xs.shape[1], 0.5), float(np.mean(ys))))
        ask(study)
        warm = time.perf_counter() - start
    return cold, warm


def median_of(measure: Callable[[], float], reps: int) -> float:
    return float(np.median([measure() for _ in range(reps)]))
