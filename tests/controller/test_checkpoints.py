"""Checkpoint directories for pbt trials: the local copy from the parent (once, whole or not
at all), labels that are not trial names, and the volume in a trial kind whose pod is not a
Job's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import support

from tuner.controller._checkpoints import (
    CheckpointError,
    local_command,
    mount_volume,
    prepare_local,
)
from tuner.spec import Experiment
from tuner.store import TrialRecord, TrialStatus

PARENT = "pbt.suggestion.katib.kubeflow.org/parent"


def experiment(**kwargs: Any) -> Experiment:
    return support.experiment(
        "exp",
        command=["python3", "train.py", "--lr=${trialParameters.lr}", "--checkpoint=/ckpt/"],
        parameters=[support.double_parameter("lr", 0.1, 1.0)],
        algorithm="pbt",
        settings={"suggestion_trial_dir": "/ckpt/", "n_population": "5"},
        **kwargs,
    )


def trial(name: str, parent: str | None = None) -> TrialRecord:
    return support.trial_record(
        name, TrialStatus.CREATED, labels={} if parent is None else {PARENT: parent}
    )


def test_a_child_starts_from_a_copy_of_its_parents_directory(tmp_path: Path) -> None:
    exp = experiment()
    root = prepare_local(exp, trial("exp-a"), tmp_path)
    assert root is not None and root.parent is None
    (root.directory / "model.bin").write_text("weights of a")

    child = prepare_local(exp, trial("exp-b", parent="exp-a"), tmp_path)

    assert child is not None and child.parent == root.directory
    assert (child.directory / "model.bin").read_text() == "weights of a"
    argv, env = local_command(child, ["train.py", "--checkpoint=/ckpt/"], {"OUT": "/ckpt/x"})
    assert argv == ["train.py", f"--checkpoint={child.directory}/"]
    assert env["OUT"] == f"{child.directory}/x"
    assert env["TUNER_CHECKPOINT_DIR"] == str(child.directory)
    assert env["TUNER_PARENT_CHECKPOINT_DIR"] == str(root.directory)


def test_a_relaunch_keeps_the_directory_and_a_half_made_copy_is_redone(tmp_path: Path) -> None:
    exp = experiment()
    parent = prepare_local(exp, trial("exp-a"), tmp_path)
    assert parent is not None
    (parent.directory / "model.bin").write_text("v1")
    # A crash in the middle of an earlier copy left a partial one beside the target.
    partial = parent.directory.with_name(".exp-b.partial")
    partial.mkdir()
    (partial / "junk").write_text("half")

    child = prepare_local(exp, trial("exp-b", parent="exp-a"), tmp_path)
    assert child is not None
    assert sorted(p.name for p in child.directory.iterdir()) == ["model.bin"]
    assert not partial.exists()
    # What the child saved survives a second launch attempt of the same trial.
    (child.directory / "model.bin").write_text("child's own")
    prepare_local(exp, trial("exp-b", parent="exp-a"), tmp_path)
    assert (child.directory / "model.bin").read_text() == "child's own"


@pytest.mark.parametrize("parent", ["../../etc", "a/b", ".hidden"])
def test_a_parent_label_that_is_not_a_trial_name_is_refused(tmp_path: Path, parent: str) -> None:
    with pytest.raises(CheckpointError, match=PARENT):
        prepare_local(experiment(), trial("exp-b", parent=parent), tmp_path)
    assert not (tmp_path / "_checkpoints").exists()


def test_without_suggestion_trial_dir_nothing_changes(tmp_path: Path) -> None:
    plain = support.experiment(
        "exp",
        command=["python3", "train.py", "--x=${trialParameters.x}"],
        parameters=[support.int_parameter("x", 0, 9)],
    )
    assert prepare_local(plain, trial("exp-a"), tmp_path) is None
    manifest = {"spec": {"template": {"spec": {"containers": [{"name": "main"}]}}}}
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert mount_volume(plain, "exp-a", {}, manifest, container) == manifest


def test_the_volume_goes_to_the_pod_that_holds_the_primary_container() -> None:
    # A PyTorchJob-like trial: the primary container sits in the Master replica's pod.
    master = {"name": "pytorch", "image": "trainer:1"}
    manifest: dict[str, Any] = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {"template": {"spec": {"containers": [master]}}},
                "Worker": {"template": {"spec": {"containers": [{"name": "pytorch"}]}}},
            }
        },
    }
    out = mount_volume(experiment(), "exp-b", {PARENT: "exp-a"}, manifest, master)

    replicas = out["spec"]["pytorchReplicaSpecs"]
    pod = replicas["Master"]["template"]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "exp-pbt"}
    assert pod["containers"][0]["volumeMounts"][0]["subPath"] == "exp/exp-b"
    assert pod["initContainers"][0]["volumeMounts"][0]["subPath"] == "exp/exp-a"
    assert "volumes" not in replicas["Worker"]["template"]["spec"]
    assert "volumes" not in manifest["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
