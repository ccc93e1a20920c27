"""`tuner run` sharing GPUs out to local trials: a fake two-GPU machine (the controller's
``CUDA_VISIBLE_DEVICES=0,1``), real trial processes, a SQLite file in a temp dir."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import support

# Holds its device for the whole run through an exclusive lock file (a second holder fails
# at once), records the device, pid and start/end times, then reports the loss.
TRIAL = r"""
import json, os, sys, time
device = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")
start = time.time()
lock = os.path.join("records", f"device-{device}.lock")
try:
    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
except FileExistsError:
    print(f"device {device} is in use by another trial", file=sys.stderr)
    sys.exit(3)
time.sleep(float(sys.argv[2]))
end = time.time()
os.close(fd)
os.unlink(lock)
threads = os.environ.get("OMP_NUM_THREADS")
cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
record = {"device": device, "start": start, "end": end, "threads": threads, "cpus": cpus}
with open(os.path.join("records", f"{os.getpid()}.json"), "w") as f:
    json.dump(record, f)
print(f"loss={sys.argv[1]}")
"""


def gpu_experiment(
    gpus: Any, *, parallel: int = 3, max_trials: int = 3, sleep: float = 1.0, **limits: Any
) -> dict:
    return support.experiment_document(
        "gpus",
        command=["python3", "trial.py", "${trialParameters.v}", str(sleep)],
        parameters=[support.int_parameter("v", 1, 50)],
        parallel=parallel,
        max_trials=max_trials,
        max_failed=1,
        container={"resources": {"limits": {"nvidia.com/gpu": gpus, **limits}}},
    )


def run(tmp_path: Path, document: dict) -> tuple[Any, list[dict[str, Any]]]:
    (tmp_path / "records").mkdir(exist_ok=True)
    done = support.tuner_run(tmp_path, document, {"trial.py": TRIAL})
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "records").glob("*.json"))]
    return done, records


def stored_trials(tmp_path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(tmp_path / "tuner.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM trials ORDER BY id")]


def test_two_gpus_three_parallel_trials_never_share_a_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    done, records = run(tmp_path, gpu_experiment(1))
    assert done.returncode == 0, done.stderr
    assert len(records) == 3 and {r["device"] for r in records} == {"0", "1"}
    for i, a in enumerate(records):
        for b in records[i + 1 :]:
            if a["device"] == b["device"]:  # one after the other, never together
                assert a["end"] <= b["start"] or b["end"] <= a["start"], (a, b)
    # The third trial waited for one of the first two to give its device back.
    first, second, third = sorted(records, key=lambda r: r["start"])
    assert third["start"] >= min(first["end"], second["end"])
    trials = stored_trials(tmp_path)
    assert [t["status"] for t in trials] == ["Succeeded"] * 3
    held = [json.loads(t["executor_ref"])["resources"]["devices"] for t in trials]
    assert sorted(h["nvidia.com/gpu"][0] for h in held) == sorted(r["device"] for r in records)
    described = subprocess.run(
        [*support.tuner_command(), "describe", "trial", trials[0]["name"]]
        + ["--db", "sqlite:///tuner.db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=support.HANG_GUARD_SECONDS,
    )
    assert f"nvidia.com/gpu {held[0]['nvidia.com/gpu'][0]})" in described.stdout


def test_gpus_option_names_the_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    (tmp_path / "records").mkdir()
    (tmp_path / "trial.py").write_text(TRIAL)
    (tmp_path / "exp.yaml").write_text(json.dumps(gpu_experiment(1, parallel=2, max_trials=2)))
    done = subprocess.run(
        [*support.tuner_command(), "run", "exp.yaml", "--db", "sqlite:///tuner.db"]
        + ["--poll-interval", "0.05", "--no-progress", "--gpus", "2,3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=support.HANG_GUARD_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "records").glob("*.json")]
    assert {r["device"] for r in records} == {"2", "3"}


def test_cpu_limit_sets_thread_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    done, records = run(tmp_path, gpu_experiment(1, parallel=1, max_trials=1, cpu="1500m"))
    assert done.returncode == 0, done.stderr
    assert [(r["device"], r["threads"]) for r in records] == [("0", "2")]


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs CPU affinity and two CPUs to pin to one",
)
def test_cpu_limit_pins_the_trial_to_that_many_cpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    done, records = run(tmp_path, gpu_experiment(1, parallel=1, max_trials=1, cpu="500m"))
    assert done.returncode == 0, done.stderr
    assert [(r["threads"], r["cpus"]) for r in records] == [("1", 1)]


def test_more_gpus_than_the_machine_has_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    done, records = run(tmp_path, gpu_experiment(4))
    assert done.returncode == 2, done.stderr
    assert "resources.limits.nvidia.com/gpu: 4 is more than the 2 device(s)" in done.stderr
    assert "CUDA_VISIBLE_DEVICES=0,1" in done.stderr
    assert records == []


def test_a_sigkilled_controller_restarts_without_giving_a_held_device_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    (tmp_path / "records").mkdir()
    (tmp_path / "trial.py").write_text(TRIAL)
    (tmp_path / "exp.yaml").write_text(json.dumps(gpu_experiment(1, max_trials=4, sleep=4.0)))
    command = [*support.tuner_command(), "run", "exp.yaml", "--db", "sqlite:///tuner.db"]
    command += ["--poll-interval", "0.05", "--no-progress"]

    def counts() -> dict[str, int]:
        """Trials per status, a Created one counted as "Waiting" once it says it waits."""
        if not (tmp_path / "tuner.db").exists():
            return {}
        query = (
            "SELECT CASE WHEN status = 'Created' AND message LIKE '%waiting for a free%'"
            " THEN 'Waiting' ELSE status END AS s, count(*) FROM trials GROUP BY s"
        )
        try:
            with sqlite3.connect(tmp_path / "tuner.db", timeout=5) as db:
                return dict(db.execute(query))
        except sqlite3.OperationalError:
            return {}  # schema not created yet

    # Killed while two trials hold both devices and the third waits for one; they outlive
    # the restart (4 s), so the restarted controller must know they hold their devices.
    proc = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    support.wait_until(
        lambda: counts().get("Running") == 2 and counts().get("Waiting") == 1,
        "two trials running, one waiting",
        interval=0.01,
        process=proc,
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(support.HANG_GUARD_SECONDS)
    (waiting,) = [t for t in stored_trials(tmp_path) if t["status"] == "Created"]
    assert "waiting for a free device: 1 nvidia.com/gpu (in use: 2 of 2)" in waiting["message"]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=support.HANG_GUARD_SECONDS
    )
    assert done.returncode == 0, done.stderr
    assert [t["status"] for t in stored_trials(tmp_path)] == ["Succeeded"] * 4
    records = [json.loads(p.read_text()) for p in (tmp_path / "records").glob("*.json")]
    assert len(records) == 4
    for i, a in enumerate(records):
        for b in records[i + 1 :]:
            if a["device"] == b["device"]:
                assert a["end"] <= b["start"] or b["end"] <= a["start"], (a, b)
