"""Push with the kubernetes executor (issue 11, item 4): refused while the controller's
DBManager is on loopback, out of the pods' reach, and accepted by `tuner submit
--dbmanager-advertise-address` for a controller serving one on a cluster address
(`tuner controller --dbmanager-address`). Real `tuner submit` subprocesses against kmock
over HTTP (the checks watch the Experiment's namespace)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import support
import yaml

kmock = pytest.importorskip("kmock", reason="kmock needs Python 3.11+")

from tuner.store import ExperimentStatus, Store  # noqa: E402

pytestmark = pytest.mark.asyncio

WAIT = 60.0


def kubeconfig(path: Path, api_url: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": api_url}}],
                "users": [{"name": "tester", "user": {"token": "not-checked"}}],
                "contexts": [{"name": "test", "context": {"cluster": "kmock", "user": "tester"}}],
                "current-context": "test",
            }
        )
    )
    return path


async def submit(tmp_path: Path, api_url: str, *extra: str) -> tuple[int, str]:
    document = support.lr_experiment_document(
        "tuning", metricsCollectorSpec={"collector": {"kind": "Push"}}
    )
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(document))
    proc = await asyncio.create_subprocess_exec(
        *support.tuner_command(),
        "submit",
        "exp.yaml",
        "--executor=kubernetes",
        f"--kubeconfig={kubeconfig(tmp_path / 'kubeconfig', api_url)}",
        f"--db=sqlite:///{tmp_path / 'tuner.db'}",
        *extra,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_push_is_refused_without_a_cluster_dbmanager(tmp_path: Path, kmock: Any) -> None:
    code, err = await submit(tmp_path, str(kmock.url))
    assert code == 2
    assert "collector.kind: 'Push'" in err and "127.0.0.1" in err


async def test_push_is_accepted_for_a_controller_serving_a_cluster_dbmanager(
    tmp_path: Path, kmock: Any
) -> None:
    code, err = await submit(
        tmp_path, str(kmock.url), "--dbmanager-advertise-address=tuner-dbmanager.tuner:6789"
    )
    assert code == 0, err
    with Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as store:
        assert store.get_experiment("exp").status is ExperimentStatus.CREATED
