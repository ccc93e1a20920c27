"""Experiment annotations stored with the spec, on every configured backend, and the
migration that added them (revision 0005) over a database holding experiments already."""

from __future__ import annotations

import json
from typing import Any

import pytest
import support
from alembic import command
from sqlalchemy import create_engine, text

from tuner.spec import MAX_OBSERVATIONS_ANNOTATION
from tuner.store import Store
from tuner.store._engine import resolve_url
from tuner.store._schema import alembic_config, current_revision, head_revision

CAP = {MAX_OBSERVATIONS_ANNOTATION: "50", "team": "vision"}


def valid_spec() -> dict[str, Any]:
    """A spec the typed Experiment reads, so `ExperimentRecord.experiment` can be built."""
    document = support.experiment_document(
        "exp", command=["t", "${trialParameters.x}"], parameters=[support.int_parameter("x", 0, 9)]
    )
    return document["spec"]


def test_annotations_round_trip_into_the_rebuilt_experiment(store: Store) -> None:
    store.create_experiment("exp", "team-a", valid_spec(), CAP)

    got = store.get_experiment("exp")

    assert got.annotations == CAP
    assert got.experiment.metadata.annotations == CAP
    assert got.experiment.max_observations_per_metric == 50
    assert [e.annotations for e in store.list_experiments()] == [CAP]


def test_an_experiment_created_without_annotations_has_none(store: Store) -> None:
    store.create_experiment("exp", "default", valid_spec())

    got = store.get_experiment("exp")

    assert got.annotations == {}
    assert got.experiment.metadata.annotations == {}


def test_updating_the_spec_replaces_the_annotations_only_when_given(store: Store) -> None:
    spec = valid_spec()
    store.create_experiment("exp", "default", spec, CAP)

    kept = store.update_experiment_spec("exp", {**spec, "maxTrialCount": 9})
    replaced = store.update_experiment_spec("exp", spec, {MAX_OBSERVATIONS_ANNOTATION: "7"})

    assert kept.annotations == CAP and kept.spec["maxTrialCount"] == 9
    assert replaced.annotations == {MAX_OBSERVATIONS_ANNOTATION: "7"}
    assert store.get_experiment("exp").experiment.max_observations_per_metric == 7


def test_annotations_that_are_not_strings_are_refused_naming_them(store: Store) -> None:
    with pytest.raises(TypeError, match=r"'max': 5 is not a str: str pair"):
        store.create_experiment("exp", "default", valid_spec(), {"max": 5})  # type: ignore[dict-item]
    assert store.list_experiments() == []


def _insert_at_0004(url: str) -> None:
    """A database migrated to revision 0004 only, holding one experiment, as an older tuner
    left it."""
    engine = create_engine(resolve_url(url))
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "0004_collector_checkpoint")
            connection.execute(
                text(
                    "INSERT INTO experiments (name, namespace, spec, status, created_at,"
                    " updated_at) VALUES ('old', 'default', :spec, 'Running', :now, :now)"
                ),
                {"spec": json.dumps(valid_spec()), "now": "2026-01-02 03:04:05"},
            )
    finally:
        engine.dispose()


def test_migration_0005_keeps_existing_experiments_without_annotations(db_url: str) -> None:
    _insert_at_0004(db_url)

    with Store.open(db_url) as store:
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision() == "0005_experiment_annotations"
        old = store.get_experiment("old")
        assert old.annotations is None
        assert old.experiment.metadata.annotations == {}
        assert old.experiment.max_observations_per_metric is None
        assert old.spec == valid_spec()

        # An older experiment takes annotations when its spec is next written with them.
        store.update_experiment_spec("old", old.spec, CAP)
        assert store.get_experiment("old").annotations == CAP
