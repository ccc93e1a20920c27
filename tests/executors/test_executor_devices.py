"""The local executor's GPU pool: one trial per device, waiting when none is free, and held
devices re-derived from stored trials by an executor that never launched them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import support

from tuner.executors import LaunchError, LocalExecutor, ResourcesBusyError
from tuner.executors._devices import detect_devices, parse_request

PRINT_DEVICE = "import os; print('device=' + os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>'))"


def job(gpus: Any = 1, name: str = "main", **limits: Any) -> dict[str, Any]:
    """A rendered Job whose container ``name`` limits ``nvidia.com/gpu`` to ``gpus``."""
    container = {"name": name, "resources": {"limits": {"nvidia.com/gpu": gpus, **limits}}}
    sidecar = {"name": "sidecar"}
    return {
        "metadata": {"labels": {"katib.kubeflow.org/experiment": "exp"}},  # as rendered
        "spec": {"template": {"spec": {"containers": [sidecar, container]}}},
    }


def launch_gated(executor: LocalExecutor, harness: Any, name: str) -> tuple[Any, Path]:
    gate = harness.tmp_path / f"gate-{name}"
    argv = harness.python(harness.GATED_TRIAL, str(gate), "0")
    return executor.launch(name, argv, {}, None, None, manifest=job()), gate


def devices_of(reference: dict[str, Any]) -> list[str]:
    return reference["resources"]["devices"]["nvidia.com/gpu"]


def prepared(run_dir: Path, gpus: str = "0,1", **limits: Any) -> LocalExecutor:
    """An executor prepared for an experiment whose primary container is ``main``."""
    executor = LocalExecutor(run_dir, gpus=gpus)
    resources = {"limits": {"nvidia.com/gpu": 1, **limits}}
    executor.prepare(
        support.experiment(
            command=["python3", "t.py", "${trialParameters.v}"],
            parameters=[support.int_parameter("v", 1, 5)],
            container={"resources": resources},
        )
    )
    return executor


@pytest.fixture
def gpu_executor(run_dir: Path, harness: Any) -> Iterator[LocalExecutor]:
    executor = prepared(run_dir)
    yield executor
    harness.stop_what_runs(executor)  # the gated trials some tests never release


def test_each_running_trial_gets_its_own_device_and_a_third_waits(
    gpu_executor: LocalExecutor, harness
) -> None:
    first, gate_1 = launch_gated(gpu_executor, harness, "t1")
    second, _ = launch_gated(gpu_executor, harness, "t2")
    assert {devices_of(first.reference)[0], devices_of(second.reference)[0]} == {"0", "1"}
    with pytest.raises(ResourcesBusyError, match=r"nvidia.com/gpu \(in use: 2 of 2\)"):
        launch_gated(gpu_executor, harness, "t3")
    assert not (gpu_executor.run_dir / "t3").exists()  # nothing was started or written
    gate_1.touch()
    assert gpu_executor.wait(first, harness.WAIT_SECONDS) is not None
    third, _ = launch_gated(gpu_executor, harness, "t3")
    assert devices_of(third.reference) == devices_of(first.reference)
    harness.wait_for_log_line(third, r"pgid=", gpu_executor)
    recorded = (gpu_executor.run_dir / "t3" / "resources.json").read_text()
    assert json.loads(recorded)["devices"] == {"nvidia.com/gpu": devices_of(first.reference)}


def test_a_second_launch_of_a_running_trial_keeps_its_devices_held(
    gpu_executor: LocalExecutor, harness
) -> None:
    first, gate = launch_gated(gpu_executor, harness, "t1")
    with pytest.raises(LaunchError, match="launched before"):
        launch_gated(gpu_executor, harness, "t1")
    second, _ = launch_gated(gpu_executor, harness, "t2")
    assert devices_of(second.reference) != devices_of(first.reference)
    gate.touch()


def test_trial_sees_only_its_device(gpu_executor: LocalExecutor, harness) -> None:
    template_env = {"CUDA_VISIBLE_DEVICES": "0,1"}  # a template's own: the allocation wins
    handle = gpu_executor.launch(
        "seen", harness.python(PRINT_DEVICE), template_env, None, None, manifest=job()
    )
    assert gpu_executor.wait(handle, harness.WAIT_SECONDS) is not None
    log = gpu_executor.log_path(handle).read_text()
    assert f"device={devices_of(handle.reference)[0]}\n" in log


@pytest.mark.parametrize("found_by", ["reference", "directory", "nothing"])
def test_restarted_executor_still_holds_the_devices_of_running_trials(
    gpu_executor: LocalExecutor, harness, run_dir: Path, found_by: str, request: Any
) -> None:
    first, gate_1 = launch_gated(gpu_executor, harness, "t1")
    second, gate_2 = launch_gated(gpu_executor, harness, "t2")
    # A new controller: nothing in memory, the trials as the store (or the run dir) has
    # them; or not adopted at all (another experiment's trials, not resumed yet).
    restarted = prepared(run_dir)
    request.addfinalizer(lambda: harness.stop_what_runs(restarted))
    if found_by == "reference":
        adopted = restarted.adopt(json.loads(json.dumps(second.reference)))
    elif found_by == "directory":
        adopted = restarted.find("t2")
    with pytest.raises(ResourcesBusyError):
        launch_gated(restarted, harness, "t3")
    gate_2.touch()
    if found_by == "nothing":
        assert gpu_executor.wait(second, harness.WAIT_SECONDS) is not None
    else:
        assert adopted is not None
        assert restarted.wait(adopted, harness.WAIT_SECONDS) is not None
    third, _ = launch_gated(restarted, harness, "t3")
    assert devices_of(third.reference) == devices_of(second.reference)
    gate_1.touch()


def test_a_request_beyond_the_pool_is_refused_naming_field_and_value(
    gpu_executor: LocalExecutor, harness
) -> None:
    with pytest.raises(LaunchError, match=r"resources.limits.nvidia.com/gpu: 3 is more than the 2"):
        gpu_executor.launch("big", harness.python("pass"), {}, None, None, manifest=job(3))


def test_trials_without_limits_see_every_device(gpu_executor: LocalExecutor, harness) -> None:
    manifest = {"spec": {"template": {"spec": {"containers": [{"name": "main"}]}}}}
    handle = gpu_executor.launch(
        "free", harness.python(PRINT_DEVICE), {"CUDA_VISIBLE_DEVICES": "7"}, None, None,
        manifest=manifest,
    )  # fmt: skip
    assert gpu_executor.wait(handle, harness.WAIT_SECONDS) is not None
    assert "device=7\n" in gpu_executor.log_path(handle).read_text()
    assert "resources" not in handle.reference


def test_prepare_refuses_a_template_asking_more_devices_than_exist(run_dir: Path) -> None:
    with pytest.raises(LaunchError) as caught:
        prepared(run_dir, gpus="0", **{"nvidia.com/gpu": 2})
    assert str(caught.value) == (
        "spec.trialTemplate.trialSpec container 'main': resources.limits.nvidia.com/gpu: 2 is"
        " more than the 1 device(s) this machine offers (--gpus 0); lower it, or name the"
        " devices with --gpus (Python API: CUDA_VISIBLE_DEVICES)"
    )


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"nvidia.com/gpu": "2", "cpu": "500m"}, ({"nvidia.com/gpu": 2}, 1)),
        ({"amd.com/gpu": 1, "cpu": 2.5}, ({"amd.com/gpu": 1}, 3)),
        ({"memory": "1Gi"}, ({}, None)),
    ],
)
def test_requests_are_read_from_limits(limits: dict, expected: tuple) -> None:
    request = parse_request({"resources": {"limits": limits}}, "c")
    assert (dict(request.gpus), request.cpus) == expected


@pytest.mark.parametrize(
    ("limits", "field"),
    [({"nvidia.com/gpu": "one"}, "nvidia.com/gpu: 'one'"), ({"cpu": "lots"}, "cpu: 'lots'")],
)
def test_unreadable_requests_name_field_and_value(limits: dict, field: str) -> None:
    with pytest.raises(LaunchError, match=f"c: resources.limits.{field}"):
        parse_request({"resources": {"limits": limits}}, "c")


def test_pool_comes_from_the_visibility_variable_first() -> None:
    assert detect_devices("nvidia.com/gpu", {"CUDA_VISIBLE_DEVICES": "2, 3"}) == (
        ("2", "3"),
        "CUDA_VISIBLE_DEVICES=2, 3",
    )
    assert detect_devices("nvidia.com/gpu", {"CUDA_VISIBLE_DEVICES": "-1"})[0] == ()
    assert detect_devices("amd.com/gpu", {"HIP_VISIBLE_DEVICES": "1"})[0] == ("1",)


def test_pool_falls_back_to_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "nvidia-smi"
    tool.write_text(
        "#!/bin/sh\n"
        "echo 'GPU 0: Fake A100 (UUID: GPU-aaa)'\n"
        "echo 'GPU 1: Fake A100 (UUID: GPU-bbb)'\n"
    )
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect_devices("nvidia.com/gpu", {}) == (("0", "1"), "nvidia-smi -L")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert detect_devices("nvidia.com/gpu", {})[0] == ()
