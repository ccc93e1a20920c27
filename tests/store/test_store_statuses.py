"""Status enums print as Katib spells them, so messages and tables read naturally."""

from __future__ import annotations

import pytest

from tuner.store import ExperimentStatus, TrialStatus


@pytest.mark.parametrize("status", [*ExperimentStatus, *TrialStatus])
def test_status_prints_as_its_katib_name(status: ExperimentStatus | TrialStatus) -> None:
    assert str(status) == status.value
    assert f"{status}" == status.value
    assert status == status.value


def test_status_names_are_katibs() -> None:
    assert [str(s) for s in TrialStatus] == [
        "Created",
        "Running",
        "Succeeded",
        "Failed",
        "Killed",
        "EarlyStopped",
        "MetricsUnavailable",
    ]
