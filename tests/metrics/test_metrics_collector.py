"""Following a growing log, resuming from a checkpoint, and the StdOut collector on a real
running trial."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tuner.executors import LocalExecutor
from tuner.metrics import (
    CollectorCheckpoint,
    CollectorConfig,
    LogFollower,
    MetricsError,
    StdOutCollector,
    collector_kinds,
    create_collector,
)


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def test_follower_reads_only_what_was_appended(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    follower = LogFollower(log)
    assert follower.read_new() == b""  # not created yet
    _append(log, b"one\ntw")
    assert follower.read_new() == b"one\ntw"
    assert follower.read_new() == b""
    _append(log, b"o\n")
    assert follower.read_new() == b"o\n"
    assert follower.offset == 8
    follower.close()


def test_follower_reads_in_bounded_chunks_and_resumes_from_an_offset(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    _append(log, b"abcdefghij")
    with LogFollower(log, chunk_bytes=4) as follower:
        assert list(follower.chunks()) == [b"abcd", b"efgh", b"ij"]
        assert follower.read_new(max_bytes=1) == b""
    with LogFollower(log, offset=6) as resumed:
        assert resumed.read_new(max_bytes=2) == b"gh"
        assert resumed.offset == 8


def _collector(log: Path, checkpoint: CollectorCheckpoint | None = None) -> StdOutCollector:
    config = CollectorConfig(metric_names=("loss", "accuracy"), log_path=log)
    collector = create_collector("StdOut", config, checkpoint)
    assert isinstance(collector, StdOutCollector)
    return collector


def test_collector_resumes_from_a_stored_checkpoint_without_double_counting(
    tmp_path: Path,
) -> None:
    log = tmp_path / "output.log"
    _append(log, b"loss=4 accuracy=0.1\nloss=3\nloss=")  # a report cut mid-line
    first = _collector(log)
    before = first.collect()
    stored = json.loads(json.dumps(first.checkpoint.to_dict()))  # kept in the database
    first.close()

    _append(log, b"2\naccuracy=0.2\nloss=1")
    second = _collector(log, CollectorCheckpoint.from_dict(stored))
    after = second.collect() + second.collect(final=True)
    second.close()
    assert [(p.name, p.value, p.step) for p in before + after] == [
        ("loss", 4.0, 0),
        ("accuracy", 0.1, 0),
        ("loss", 3.0, 1),
        ("loss", 2.0, 2),
        ("accuracy", 0.2, 1),
        ("loss", 1.0, 3),
    ]


def test_collect_with_max_bytes_reads_at_most_that_much(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    _append(log, b"loss=1\nloss=2\nloss=3\n")
    collector = _collector(log)
    assert [p.value for p in collector.collect(max_bytes=8)] == [1.0]
    assert [p.value for p in collector.collect()] == [2.0, 3.0]


def test_collector_parses_a_running_trials_output_as_it_is_written(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path / "run", default_working_dir=tmp_path)
    gate = tmp_path / "gate"
    code = (
        "import os, sys, time\n"
        "print('loss=0.9')\n"  # no flush: the executor makes Python trials unbuffered
        "while not os.path.exists(sys.argv[1]):\n"
        "    time.sleep(0.01)\n"
        "print('loss=0.1 accuracy=0.8', end='')\n"
    )
    handle = executor.launch("live", ["python3", "-c", code, str(gate)], {}, None, None)
    collector = _collector(executor.log_path(handle))
    try:
        seen: list[Any] = []
        while not seen:  # the first report arrives while the trial still waits at the gate
            assert executor.poll(handle) is None
            seen = collector.collect()
        assert [(p.name, p.value) for p in seen] == [("loss", 0.9)]
        gate.touch()
        assert executor.wait(handle, 30) is not None
        rest = collector.collect(final=True)
        assert [(p.name, p.value) for p in rest] == [("loss", 0.1), ("accuracy", 0.8)]
    finally:
        collector.close()
        executor.kill(handle)
        executor.wait(handle, 30)


def test_unknown_collector_kind_lists_the_known_ones(tmp_path: Path) -> None:
    assert "StdOut" in collector_kinds()
    with pytest.raises(
        MetricsError, match="^metricsCollectorSpec.collector.kind: 'Prometheus'.*StdOut"
    ):
        create_collector("Prometheus", CollectorConfig(("loss",), log_path=tmp_path / "x"))


def test_stdout_collector_needs_the_log_path() -> None:
    with pytest.raises(MetricsError, match="^log_path"):
        create_collector("StdOut", CollectorConfig(("loss",)))


def test_kind_may_be_a_str_enum_like_the_specs() -> None:
    import enum

    class Kind(str, enum.Enum):
        STDOUT = "StdOut"

    collector = create_collector(Kind.STDOUT, CollectorConfig(("loss",), log_path=Path("/none")))
    assert isinstance(collector, StdOutCollector)
