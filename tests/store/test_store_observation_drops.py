"""Thinning a trial's stored log (the cap on reports per metric): the drops given with a batch
delete exactly the named steps and the off-stride ones, on every backend, in the batch's
transaction, and leave other metrics, other trials and step-less observations alone."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest

from tuner.store import Observation, ObservationDrop, Store

if TYPE_CHECKING:
    from store.conftest import Build

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def observations(trial: str, metric: str, steps: range) -> list[Observation]:
    return [Observation(trial, metric, float(s), s, T0) for s in steps]


def steps_of(store: Store, trial: str, metric: str) -> list[int | None]:
    return sorted(
        (o.step for o in store.get_observations(trial, metric)), key=lambda s: (s is None, s)
    )


def test_drops_delete_off_stride_and_named_steps_with_the_next_batch(
    store: Store, build: Build
) -> None:
    build.experiment(store)
    build.trials(store, "exp", "exp-1", "exp-2")
    store.add_observations("exp-1", observations("exp-1", "loss", range(20)))
    store.add_observations("exp-1", [Observation("exp-1", "loss", 9.5, None, T0)])
    store.add_observations("exp-1", observations("exp-1", "acc", range(20)))
    store.add_observations("exp-2", observations("exp-2", "loss", range(20)))

    added = store.add_observations(
        "exp-1",
        observations("exp-1", "loss", range(20, 22)),
        checkpoint={"position": 7},
        drops=[
            ObservationDrop("loss", stride=4, keep=frozenset({5, 19})),
            ObservationDrop("acc", steps=frozenset({3, 4})),
        ],
    )

    assert added == 2
    assert steps_of(store, "exp-1", "loss") == [0, 4, 5, 8, 12, 16, 19, 20, 21, None]
    assert steps_of(store, "exp-1", "acc") == [s for s in range(20) if s not in (3, 4)]
    assert steps_of(store, "exp-2", "loss") == list(range(20))
    assert store.collector_checkpoint("exp-1") == {"position": 7}


@pytest.mark.parametrize("stride", [0, -2])
def test_a_stride_below_one_is_refused(stride: int) -> None:
    with pytest.raises(ValueError, match=rf"^ObservationDrop.stride: {stride} is not an int >= 1$"):
        ObservationDrop("loss", stride=stride)
