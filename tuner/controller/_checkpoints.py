"""Checkpoint directories of trials whose algorithm names one (Katib's ``suggestion_trial_dir``
setting, pbt): each trial gets its own directory, starting as a copy of its parent's
(the ``pbt.suggestion.katib.kubeflow.org/parent`` label), at the path the setting names.

Katib mounts ``<experiment>/<trial>`` of a PVC there and its pbt service copies the parent's
directory beforehand. tuner does the copy itself: on this machine (executors that share the
host) into ``<run_dir>/_checkpoints/<experiment>/<trial>``, the setting's path rewritten to it
in argv and env; elsewhere (Kubernetes) by mounting a volume the Experiment names, with an
init container that copies the parent's subdirectory.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.controller._trial_env import path_to
from tuner.errors import TunerError
from tuner.spec import Experiment
from tuner.store import TrialRecord

CHECKPOINT_SETTING = "suggestion_trial_dir"
PARENT_LABEL = "pbt.suggestion.katib.kubeflow.org/parent"
CHECKPOINT_DIR_ENV = "TUNER_CHECKPOINT_DIR"
"""The trial's own checkpoint directory (filled with its parent's files before it starts)."""
PARENT_CHECKPOINT_DIR_ENV = "TUNER_PARENT_CHECKPOINT_DIR"
"""The parent's checkpoint directory, on executors that share the host; read only."""
CHECKPOINT_VOLUME_ANNOTATION = "tuner.kubeflow.org/checkpoint-volume"
"""The PersistentVolumeClaim trials mount on Kubernetes; default Katib's ``<experiment>-pbt``."""
CHECKPOINTS_DIR = "_checkpoints"
"""Under the run directory; no trial is named so (trial names start with a letter or digit)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
_VOLUME = "tuner-checkpoints"
_PARENT_MOUNT = "/tuner-parent-checkpoint"
_OWN_MOUNT = "/tuner-checkpoint"


class CheckpointError(TunerError, OSError):
    """A checkpoint directory that cannot be prepared; like the file system's own errors
    (OSError), it fails the trial's launch."""


def checkpoint_path(experiment: Experiment) -> str | None:
    """The path the algorithm's ``suggestion_trial_dir`` setting names, or None."""
    for setting in experiment.spec.algorithm.algorithm_settings:
        if setting.name == CHECKPOINT_SETTING and setting.value.strip():
            return setting.value.strip()
    return None


def parent_of(trial_name: str, labels: Mapping[str, str]) -> str | None:
    """The trial's parent by its label; CheckpointError for a name that is not a trial's."""
    parent = labels.get(PARENT_LABEL)
    if not parent:
        return None
    if not _NAME.fullmatch(parent) or ".." in parent:
        raise CheckpointError(
            f"trial {trial_name!r}: label {PARENT_LABEL}={parent!r} is not a trial name"
        )
    return parent


@dataclass(frozen=True)
class LocalCheckpoint:
    """A trial's checkpoint directory on this machine, where the spec says ``written``."""

    written: str
    directory: Path
    parent: Path | None


def local_checkpoint(
    experiment: Experiment, trial_name: str, labels: Mapping[str, str], run_dir: Path
) -> LocalCheckpoint | None:
    """Where the trial's (and its parent's) checkpoint directory is; touches no file."""
    written = checkpoint_path(experiment)
    if written is None:
        return None
    root = Path(run_dir) / CHECKPOINTS_DIR / experiment.metadata.name
    parent = parent_of(trial_name, labels)
    return LocalCheckpoint(written, root / trial_name, None if parent is None else root / parent)


def prepare_local(
    experiment: Experiment, trial: TrialRecord, run_dir: Path
) -> LocalCheckpoint | None:
    """Create the trial's directory as a copy of its parent's (once: a directory left by an
    earlier launch attempt is kept). The copy is made aside and renamed into place, so a
    crash leaves either the whole copy or none. A parent without a directory (it saved
    nothing) gives an empty one."""
    checkpoint = local_checkpoint(experiment, trial.name, trial.labels, run_dir)
    if checkpoint is None:
        return None
    own, parent = checkpoint.directory, checkpoint.parent
    if not own.is_dir():
        partial = own.with_name(f".{own.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        own.parent.mkdir(parents=True, exist_ok=True)
        if parent is not None and parent.is_dir():
            shutil.copytree(parent, partial, symlinks=True)
        else:
            partial.mkdir()
        os.replace(partial, own)
    return checkpoint


def local_command(
    checkpoint: LocalCheckpoint, argv: Sequence[str], env: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """argv and env with the spec's checkpoint path replaced by the trial's directory and
    ``TUNER_CHECKPOINT_DIR`` (and ``TUNER_PARENT_CHECKPOINT_DIR``) set."""
    written = checkpoint.written.rstrip("/") or "/"
    own = str(checkpoint.directory)
    out_argv = [a.replace(written, own) for a in argv]
    out_env = {k: v.replace(written, own) for k, v in env.items()}
    out_env[CHECKPOINT_DIR_ENV] = own
    if checkpoint.parent is not None:
        out_env[PARENT_CHECKPOINT_DIR_ENV] = str(checkpoint.parent)
    return out_argv, out_env


def claim_name(experiment: Experiment) -> str:
    """The PersistentVolumeClaim holding the checkpoints: the annotation's, else Katib's."""
    named = experiment.metadata.annotations.get(CHECKPOINT_VOLUME_ANNOTATION, "").strip()
    return named or f"{experiment.metadata.name}-{experiment.spec.algorithm.algorithm_name}"


def mount_volume(
    experiment: Experiment,
    trial_name: str,
    labels: Mapping[str, str],
    manifest: Mapping[str, Any],
    primary_container: Mapping[str, Any],
) -> dict[str, Any]:
    """A copy of ``manifest`` whose pod (the one holding ``primary_container``) mounts the
    claim's ``<experiment>/<trial>`` at the checkpoint path, as Katib's webhook does, with an
    init container (the primary container's image) copying ``<experiment>/<parent>`` into
    it without overwriting, and ``TUNER_CHECKPOINT_DIR`` in the container's env. Unchanged
    without a checkpoint path or when no pod holds the container."""
    written = checkpoint_path(experiment)
    if written is None:
        return dict(manifest)
    out = copy.deepcopy(dict(manifest))
    pod, container = _pod_of(out, path_to(manifest, primary_container))
    if pod is None or container is None:
        return out
    experiment_dir = experiment.metadata.name
    volume = {"name": _VOLUME, "persistentVolumeClaim": {"claimName": claim_name(experiment)}}
    pod.setdefault("volumes", []).append(volume)
    own = {"name": _VOLUME, "subPath": f"{experiment_dir}/{trial_name}"}
    container.setdefault("volumeMounts", []).append({**own, "mountPath": written})
    env = [e for e in container.get("env") or [] if e.get("name") != CHECKPOINT_DIR_ENV]
    container["env"] = [*env, {"name": CHECKPOINT_DIR_ENV, "value": written}]
    parent = parent_of(trial_name, labels)
    if parent is not None:
        pod.setdefault("initContainers", []).append(
            {
                "name": "tuner-parent-checkpoint",
                "image": container.get("image", ""),
                "command": ["cp", "-R", "-n", f"{_PARENT_MOUNT}/.", f"{_OWN_MOUNT}/"],
                "volumeMounts": [
                    {
                        "name": _VOLUME,
                        "subPath": f"{experiment_dir}/{parent}",
                        "mountPath": _PARENT_MOUNT,
                        "readOnly": True,
                    },
                    {**own, "mountPath": _OWN_MOUNT},
                ],
            }
        )
    return out


def _pod_of(
    manifest: dict[str, Any], path: tuple[Any, ...] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """In the copy, the pod spec (``.../containers/<i>``'s parent) and the container."""
    if path is None or len(path) < 2 or path[-2] != "containers":
        return None, None
    node: Any = manifest
    for key in path[:-2]:
        node = node[key]
    return node, node["containers"][path[-1]]
