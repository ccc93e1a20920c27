"""Store.fenced: a controller's writes land only while its owner holds the experiment's lease,
so a replica that wakes up after a takeover cannot undo its successor's work."""

from __future__ import annotations

import pytest

from tuner.store import ExperimentNotFoundError, LeaseLostError, Store, StoreError, TrialStatus

ME, PEER = "tuner/here/1/1", "tuner/there/2/2"


@pytest.fixture
def store(store: Store) -> Store:
    """The conftest's empty store on every backend, with experiment `exp` and two trials."""
    store.create_experiment("exp", "default", {"objective": {"type": "minimize"}})
    store.create_trials("exp", [("exp-1", {"x": "1"}), ("exp-2", {"x": "2"})])
    return store


def take_over(store: Store) -> None:
    """What a peer does once our lease expired: expire it, then acquire it."""
    assert store.renew_lease("exp", ME, 0)
    assert store.acquire_lease("exp", PEER, 60)


def test_writes_pass_while_the_lease_is_ours(store: Store) -> None:
    assert store.acquire_lease("exp", ME, 60)
    fenced = store.fenced("exp", ME)

    fenced.update_trial("exp-1", status=TrialStatus.RUNNING)
    fenced.finish_trial("exp-1", TrialStatus.SUCCEEDED, objective_value=1.0)

    assert store.get_trial("exp-1").status is TrialStatus.SUCCEEDED
    best = store.best_trial("exp")
    assert best is not None and best.name == "exp-1"


def test_every_write_is_refused_after_a_takeover(store: Store) -> None:
    assert store.acquire_lease("exp", ME, 60)
    fenced = store.fenced("exp", ME)
    fenced.update_trial("exp-1", status=TrialStatus.RUNNING)
    take_over(store)
    # The peer finishes the trial we were running.
    store.finish_trial("exp-1", TrialStatus.SUCCEEDED, objective_value=1.0)

    writes = [
        lambda: fenced.update_trial("exp-1", status=TrialStatus.RUNNING),
        lambda: fenced.finish_trial("exp-2", TrialStatus.FAILED),
        lambda: fenced.create_trials("exp", [("exp-3", {"x": "3"})]),
        lambda: fenced.set_experiment_status("exp", store.get_experiment("exp").status),
    ]
    for write in writes:
        with pytest.raises(LeaseLostError, match=f"leased to {PEER}"):
            write()

    assert store.get_trial("exp-1").status is TrialStatus.SUCCEEDED
    assert store.get_trial("exp-2").status is TrialStatus.CREATED
    assert sorted(t.name for t in store.list_trials("exp")) == ["exp-1", "exp-2"]
    assert issubclass(LeaseLostError, StoreError)  # callers that handle store errors handle it


def test_lease_calls_are_not_fenced(store: Store) -> None:
    assert store.acquire_lease("exp", ME, 60)
    fenced = store.fenced("exp", ME)
    take_over(store)

    assert fenced.renew_lease("exp", ME, 60) is False
    assert fenced.release_lease("exp", ME) is False
    assert store.get_experiment("exp").lease_owner == PEER


def test_a_write_for_a_deleted_experiment_says_so(store: Store) -> None:
    assert store.acquire_lease("exp", ME, 60)
    fenced = store.fenced("exp", ME)
    store.delete_experiment("exp")

    with pytest.raises(ExperimentNotFoundError):
        fenced.add_observations("exp-1", [])
