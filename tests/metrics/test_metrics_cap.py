"""The cap on stored reports per metric, as pure decisions: which points a batch keeps and
which stored ones it drops, applied here to a dict standing in for the store."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest

from tuner.metrics import CapState, MetricPoint, MetricsError, ObservationCap, Rungs, summarize

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def reports(values: Sequence[float], name: str = "loss") -> list[MetricPoint]:
    return [MetricPoint(name, v, None, step) for step, v in enumerate(values)]


def kept_after(
    points: Sequence[MetricPoint], cap: ObservationCap, cuts: Sequence[int], *, resume: bool
) -> dict[tuple[str, int], float]:
    """What a store holds after ``points`` arrive in batches cut at ``cuts``; ``resume``:
    the state goes through its JSON form between batches, as across a controller restart."""
    stored: dict[tuple[str, int], float] = {}
    state = CapState(cap)
    bounds = [0, *cuts, len(points)]
    for i, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
        kept, drops = state.admit(points[start:end], T0 + timedelta(seconds=i))
        for drop in drops:
            for key in [k for k in stored if k[0] == drop.metric]:
                step = key[1]
                off = drop.stride is not None and step % drop.stride and step not in drop.keep
                if step in drop.steps or off:
                    del stored[key]
        stored.update({(p.name, p.step): p.value for p in kept if p.step is not None})
        if resume:
            state = CapState(cap, json.loads(json.dumps(state.to_json())))
    return stored


def random_values(count: int, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(0, 1) for _ in range(count)]


def test_a_long_log_keeps_an_evenly_spread_stride_of_at_most_the_cap() -> None:
    values = random_values(100_000)

    stored = kept_after(reports(values), ObservationCap(1000), [], resume=False)

    steps = sorted(step for _, step in stored)
    stride = steps[1] - steps[0]
    assert stride == 128  # the first power of two with at most 1000 multiples below 100,000
    multiples = [s for s in steps if s % stride == 0]
    assert multiples == list(range(0, 100_000, stride))
    # The rest: the newest report and the extreme values, which the stride missed.
    assert len(steps) - len(multiples) <= 3
    assert 500 <= len(stored) <= 1003


def test_min_max_and_latest_stay_exact_however_the_log_is_thinned() -> None:
    values = random_values(50_000)
    values[7_777] = -100.0  # the minimum, off the stride
    values[33_333] = 100.0

    stored = kept_after(reports(values), ObservationCap(50), [10, 999, 20_000], resume=False)

    kept = [MetricPoint("loss", v, None, s) for (_, s), v in sorted(stored.items())]
    assert summarize(kept)["loss"].as_dict() == summarize(reports(values))["loss"].as_dict()
    assert {7_777, 33_333, 49_999} <= {s for _, s in stored}


def test_the_kept_set_does_not_depend_on_batches_nor_on_a_restart_between_them() -> None:
    values = random_values(30_000)
    values[100::97] = [math.nan] * len(values[100::97])
    points = reports(values) + reports(random_values(30_000, seed=4), name="accuracy")
    points.sort(key=lambda p: (p.step, p.name))  # two metrics interleaved, as a trial prints
    cap = ObservationCap(200, head=4, rungs=Rungs(1, 3))
    rng = random.Random(9)

    one_batch = kept_after(points, cap, [], resume=False)
    many = kept_after(points, cap, sorted(rng.sample(range(len(points)), 400)), resume=True)

    assert many == one_batch
    assert 100 <= sum(1 for name, _ in one_batch if name == "accuracy") <= 203


def test_the_head_and_the_first_finite_report_at_each_rung_are_kept() -> None:
    values = [float(i) for i in range(5_000)]
    values[2] = math.nan  # the head is the first 4 finite reports: steps 0, 1, 3, 4
    values[81] = math.nan  # rung 81: the first finite report at or beyond it is step 82

    stored = kept_after(
        reports(values), ObservationCap(10, head=4, rungs=Rungs(3, 3, 500)), [], resume=False
    )

    steps = {s for _, s in stored}
    assert {0, 1, 2, 3, 4} <= steps
    assert {3, 9, 27, 82, 243} <= steps
    assert 729 not in steps  # beyond max_resource 500: no rung
    assert stored[("loss", 82)] == 82.0


def test_exempt_metrics_and_reports_without_a_step_are_kept_whole() -> None:
    points = reports(random_values(3_000)) + reports(random_values(3_000), name="acc")
    unnumbered = [MetricPoint("loss", 0.5, None, None), MetricPoint("loss", 0.7, None, None)]
    cap = ObservationCap(10, exempt=frozenset({"acc"}))

    kept, _ = CapState(cap).admit(points + unnumbered, T0)

    assert sum(1 for p in kept if p.name == "acc") == 3_000
    assert sum(1 for p in kept if p.name == "loss" and p.step is not None) <= 13
    assert kept[-2:] == unnumbered


@pytest.mark.parametrize("limit", [0, -1, 2.5, True])
def test_a_cap_that_is_not_a_positive_integer_is_refused(limit: object) -> None:
    with pytest.raises(MetricsError, match=rf"^limit: {limit!r} is not an integer >= 1$"):
        ObservationCap(limit)  # type: ignore[arg-type]
