"""The algorithm settings a suggestion service returned: stored with the trials they came
with, in one transaction, on every configured backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tuner.store import Store, TrialExistsError

if TYPE_CHECKING:
    from store.conftest import Build

STATE = (("resource_name", "epochs"), ("current_s", "2"), ("evaluating_trials", "3"))


def test_a_new_experiment_has_no_returned_settings(store: Store, build: Build) -> None:
    build.experiment(store)
    assert store.get_experiment("exp").algorithm_settings == ()


def test_settings_are_stored_with_the_trials_and_read_back_in_order(
    store: Store, build: Build
) -> None:
    build.experiment(store)
    store.create_trials("exp", [("exp-a", {"lr": "0.1"})], algorithm_settings=STATE)
    assert store.get_experiment("exp").algorithm_settings == STATE
    # Settings alone (a reply without points) are stored too; None leaves them as they are.
    store.create_trials("exp", [], algorithm_settings=(("current_s", "1"),))
    store.create_trials("exp", [("exp-b", {"lr": "0.2"})])
    assert store.get_experiment("exp").algorithm_settings == (("current_s", "1"),)


def test_a_refused_batch_stores_neither_trials_nor_settings(store: Store, build: Build) -> None:
    build.experiment(store)
    store.create_trials("exp", [("exp-a", {"lr": "0.1"})], algorithm_settings=STATE)
    with pytest.raises(TrialExistsError):
        store.create_trials(
            "exp",
            [("exp-b", {"lr": "0.2"}), ("exp-a", {"lr": "0.3"})],
            algorithm_settings=(("current_s", "0"),),
        )
    assert store.get_experiment("exp").algorithm_settings == STATE
    assert [t.name for t in store.list_trials("exp")] == ["exp-a"]
