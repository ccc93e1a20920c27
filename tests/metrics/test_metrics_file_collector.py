"""The File collector (TEXT and JSON lines, read as the file grows, resumable), where a
trial's metrics file is on this machine, and the Push / None collectors."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from tuner.metrics import (
    CollectorCheckpoint,
    CollectorConfig,
    FileCollector,
    MetricPoint,
    MetricsError,
    collector_kinds,
    create_collector,
    trial_metrics_path,
)

NAMES = ("loss", "acc")


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


def file_collector(
    path: Path,
    file_format: str = "TEXT",
    filters: tuple[str, ...] = (),
    checkpoint: CollectorCheckpoint | None = None,
) -> FileCollector:
    config = CollectorConfig(NAMES, filters=filters, file_path=path, file_format=file_format)
    collector = create_collector("File", config, checkpoint)
    assert isinstance(collector, FileCollector)
    return collector


def values(points: list[MetricPoint]) -> list[tuple[str, float, int | None]]:
    return [(p.name, p.value, p.step) for p in points]


def test_every_katib_collector_kind_tuner_supports_is_registered() -> None:
    assert {"StdOut", "File", "Push", "None"} <= set(collector_kinds())


def test_text_file_is_read_as_it_grows_with_steps_per_metric(tmp_path: Path) -> None:
    path = tmp_path / "metrics.log"
    collector = file_collector(path)
    assert collector.collect() == []  # the trial has not created it yet

    append(path, "epoch 0 loss=0.9 acc=0.1\nloss=0.")
    first = collector.collect()
    append(path, "8\nnot a metric\n2024-05-01T12:00:00Z loss=0.7\n")
    second = collector.collect(final=True)

    assert values(first) == [("loss", 0.9, 0), ("acc", 0.1, 0)]
    assert values(second) == [("loss", 0.8, 1), ("loss", 0.7, 2)]
    assert second[-1].timestamp == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    collector.close()


def test_text_file_uses_the_metrics_format_filters(tmp_path: Path) -> None:
    path = tmp_path / "metrics.log"
    append(path, "loss: 0.5 | acc: 0.25\nloss=9\n")

    collector = file_collector(path, filters=(r"(\w+):\s*([\d.]+)",))

    assert values(collector.collect(final=True)) == [("loss", 0.5, 0), ("acc", 0.25, 0)]


def test_json_lines_take_numbers_and_numeric_strings(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    collector = file_collector(path, "JSON")
    append(path, '{"loss": "0.5", "acc": 0.25, "timestamp": "2024-05-01T12:00:00Z"}\n')
    first = collector.collect()
    append(path, '{"epoch": 1, "loss": 0.4}\nnot json\n{"loss": "abc", "acc": "0.3"}')
    second = collector.collect(final=True)

    assert values(first) == [("loss", 0.5, 0), ("acc", 0.25, 0)]
    assert first[0].timestamp == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert values(second) == [("loss", 0.4, 1), ("acc", 0.3, 1)]


def test_a_collector_made_from_a_checkpoint_neither_loses_nor_repeats(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    append(path, '{"loss": 1}\n{"loss": 2}\n{"lo')
    before = file_collector(path, "JSON")
    assert values(before.collect()) == [("loss", 1.0, 0), ("loss", 2.0, 1)]
    checkpoint = before.checkpoint
    before.close()

    append(path, 'ss": 3}\n')
    after = file_collector(path, "JSON", checkpoint=checkpoint)

    assert values(after.collect(final=True)) == [("loss", 3.0, 2)]


def test_file_collector_needs_a_path_and_a_known_format(tmp_path: Path) -> None:
    with pytest.raises(MetricsError, match="fileSystemPath.path"):
        create_collector("File", CollectorConfig(NAMES))
    with pytest.raises(MetricsError, match="format: 'XML' is not a metrics file format"):
        file_collector(tmp_path / "m", "XML")


def test_a_shared_spec_path_is_remapped_into_the_trial_directory(tmp_path: Path) -> None:
    path, remapped = trial_metrics_path(
        "/var/log/katib/metrics.log", "exp-abc", "default", tmp_path / "exp-abc"
    )

    assert (path, remapped) == (tmp_path / "exp-abc" / "metrics.log", True)


def test_a_path_naming_the_trial_is_kept_as_written() -> None:
    path, remapped = trial_metrics_path(
        "/data/${trialSpec.Namespace}/${trialSpec.Name}/m.json", "exp-abc", "team", None
    )

    assert (path, remapped) == (Path("/data/team/exp-abc/m.json"), False)


def test_a_shared_path_without_a_trial_directory_is_refused() -> None:
    with pytest.raises(MetricsError, match=r"shared by every trial.*\$\{trialSpec.Name\}"):
        trial_metrics_path("/var/log/katib/metrics.log", "exp-abc", "default", None)


@pytest.mark.parametrize("kind", ["Push", "None"])
def test_push_and_none_collectors_read_nothing(kind: str, tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    append(log, "loss=0.5\n")

    collector = create_collector(kind, CollectorConfig(NAMES, log_path=log))

    assert collector.collect(final=True) == []
    assert collector.reads_output is False
    assert create_collector("StdOut", CollectorConfig(NAMES, log_path=log)).reads_output
