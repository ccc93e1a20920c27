"""StdOutParser: Katib's text format, filters, timestamps, chunking and bounded memory."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from tuner.metrics import DEFAULT_METRICS_FORMAT, MetricPoint, MetricsError, StdOutParser


def _parse(text: str, names=("loss", "accuracy"), filters=None) -> list[MetricPoint]:
    parser = StdOutParser(names, filters)
    return parser.feed(text.encode()) + parser.close()


def _values(points: list[MetricPoint]) -> list[tuple[str, float]]:
    return [(p.name, p.value) for p in points]


def test_default_format_is_katibs_default_filter() -> None:
    assert DEFAULT_METRICS_FORMAT == r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("loss=0.3", 0.3),
        ("loss = 2", 2.0),
        ("loss=.98", 0.98),
        ("loss=-7.53e-05", -7.53e-05),
        ("loss=+1E0", 1.0),
        ("loss=1.23E10", 1.23e10),
        ("epoch 3: loss=0.25, lr=0.1", 0.25),
    ],
)
def test_default_format_reads_katibs_number_forms(line: str, value: float) -> None:
    assert _values(_parse(line + "\n")) == [("loss", value)]


def test_several_metrics_on_one_line_each_count() -> None:
    points = _parse("loss=0.1 accuracy=0.9\n")
    assert _values(points) == [("loss", 0.1), ("accuracy", 0.9)]


def test_only_the_requested_metric_names_are_kept() -> None:
    points = _parse("lr=0.1 loss=0.5 val-loss=0.7 Loss=9\n", names=("loss", "val-loss"))
    assert _values(points) == [("loss", 0.5), ("val-loss", 0.7)]


@pytest.mark.parametrize("line", ["loss=abc", "loss=nan", "loss=inf", "loss=", "loss=1e999"])
def test_non_numeric_values_are_ignored(line: str) -> None:
    assert _parse(f"{line}\nloss=1\n") == _parse("loss=1\n")


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-Infinity", "1_000", "0x10", "1e999"])
def test_non_numeric_values_captured_by_a_custom_format_are_ignored(value: str) -> None:
    points = _parse(f"loss={value}\nloss=1\n", filters=[r"(\w+)=(\S+)"])
    assert [(p.name, p.value, p.step) for p in points] == [("loss", 1.0, 0)]


def test_custom_metrics_format_uses_groups_one_and_two() -> None:
    filters = [r"(\w+):\s*([0-9.]+)", r"metric (\w+) is ([-0-9.]+)"]
    points = _parse("loss: 0.4 | metric accuracy is 0.8 | loss=0.1\n", filters=filters)
    assert _values(points) == [("loss", 0.4), ("accuracy", 0.8)]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(\w+=([0-9]+)", r"metricsFormat\[0\]: .* is not a valid regular expression"),
        (r"(\w+)=[0-9]+", r"metricsFormat\[0\]: .* has 1 group\(s\); it needs two"),
    ],
)
def test_invalid_metrics_format_names_the_field(pattern: str, message: str) -> None:
    with pytest.raises(MetricsError, match=f"^metricsCollectorSpec.source.filter.{message}"):
        StdOutParser(["loss"], [pattern])


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        (
            "2024-01-02T03:04:05.123456789+02:00",
            datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_leading_rfc3339_timestamp_dates_the_lines_reports(stamp: str, expected: datetime) -> None:
    points = _parse(f"{stamp} loss=0.3 accuracy=0.7\n")
    assert [p.timestamp for p in points] == [expected, expected]
    assert _values(points) == [("loss", 0.3), ("accuracy", 0.7)]


@pytest.mark.parametrize(
    "line", ["loss=0.3", "2024-13-02T03:04:05Z loss=0.3", "yesterday loss=0.3"]
)
def test_lines_without_a_valid_leading_timestamp_have_none(line: str) -> None:
    (point,) = _parse(line + "\n")
    assert point.timestamp is None and point.value == 0.3


def test_step_counts_reports_per_metric() -> None:
    points = _parse("loss=3\naccuracy=0.1\nloss=2 accuracy=0.2\nloss=1\n")
    assert [(p.name, p.step) for p in points] == [
        ("loss", 0),
        ("accuracy", 0),
        ("loss", 1),
        ("accuracy", 1),
        ("loss", 2),
    ]


def test_chunks_split_anywhere_give_the_same_points_as_one_chunk() -> None:
    stream = b"2024-01-02T03:04:05Z loss=0.125 accuracy=0.5\r\nnoise\nloss=-1.5e-3\nloss=7"
    whole = StdOutParser(["loss", "accuracy"])
    expected = whole.feed(stream) + whole.close()
    assert len(expected) == 4
    for size in (1, 2, 3, 7):
        parser = StdOutParser(["loss", "accuracy"])
        points = []
        for i in range(0, len(stream), size):
            points += parser.feed(stream[i : i + size])
        assert parser.position <= len(stream)
        assert points + parser.close() == expected
        assert parser.position == len(stream)


def test_partial_line_waits_for_its_newline() -> None:
    parser = StdOutParser(["loss"])
    assert parser.feed(b"loss=0.") == []
    assert parser.position == 0
    assert _values(parser.feed(b"25\n")) == [("loss", 0.25)]
    assert parser.position == len(b"loss=0.25\n")


def test_close_parses_a_last_line_without_newline_once() -> None:
    parser = StdOutParser(["loss"])
    parser.feed(b"loss=1\nloss=2")
    assert _values(parser.close()) == [("loss", 2.0)]
    assert parser.close() == []
    with pytest.raises(MetricsError):
        parser.feed(b"loss=3\n")


def test_carriage_returns_end_lines_like_progress_bars_do() -> None:
    points = _parse("epoch 1 [=====>   ] 50%\repoch 1 [========] 100%\rloss=0.5\n")
    assert _values(points) == [("loss", 0.5)]


def test_resume_from_position_and_steps_continues_without_repeating() -> None:
    stream = b"loss=4\nloss=3\nloss=2\nloss=1\n"
    first = StdOutParser(["loss"])
    seen = first.feed(stream[:17])  # two whole lines and a part of the third
    resumed = StdOutParser(["loss"], start_position=first.position, start_steps=first.steps)
    seen += resumed.feed(stream[first.position :]) + resumed.close()
    assert [(p.value, p.step) for p in seen] == [(4, 0), (3, 1), (2, 2), (1, 3)]


def test_a_line_longer_than_the_cap_is_discarded_and_the_next_lines_parse(caplog) -> None:
    parser = StdOutParser(["loss"], max_line_bytes=1024 * 1024)
    huge = b"loss=9 " + b"x" * (2 * 1024 * 1024) + b" loss=8\n"
    stream = b"loss=1\n" + huge + b"loss=2\n"
    points, peak = [], 0
    for i in range(0, len(stream), 64 * 1024):
        points += parser.feed(stream[i : i + 64 * 1024])
        peak = max(peak, parser.buffered_bytes)
    assert _values(points + parser.close()) == [("loss", 1.0), ("loss", 2.0)]
    assert parser.discarded_lines == 1
    assert peak <= parser.max_line_bytes
    assert parser.position == len(stream)
    assert re.search(r"discarded a line of \d+ bytes", caplog.text)


def test_a_huge_line_in_one_chunk_is_discarded_too() -> None:
    parser = StdOutParser(["loss"], max_line_bytes=1000)
    points = parser.feed(b"loss=1 " + b"y" * 5000 + b"\nloss=2\n")
    assert _values(points) == [("loss", 2.0)] and parser.discarded_lines == 1


def test_a_line_of_exactly_the_cap_is_kept() -> None:
    line = b"loss=5 " + b"z" * (100 - 7)
    parser = StdOutParser(["loss"], max_line_bytes=100)
    assert _values(parser.feed(line + b"\n")) == [("loss", 5.0)]
    assert parser.discarded_lines == 0


def _line_by_line(text: str, names: tuple[str, ...]) -> list[MetricPoint]:
    """What Katib's filter reports, one line at a time (the reference for the block scan)."""
    parser = StdOutParser(names)
    points: list[MetricPoint] = []
    for line in text.replace("\r", "\n").split("\n")[:-1]:
        points += parser._parse_line(line.encode())
    return points


@pytest.mark.parametrize(
    "text",
    [
        "epoch 1 loss=0.5 accuracy=0.25\nval_loss=9 loss = 0.4\n",
        "x=1loss=2 loss=3\nloss=4\n",  # Katib reports a name glued to an earlier value
        "a-loss=1 a|loss=2 loss|x=3 loss-=4 loss=1e999 loss=e5 loss=- loss=.5\n",
        "loss\n=1\nloss=2\rloss=3\r\n",  # a match never crosses a line end
        "2024-01-01T00:00:00Z loss=1\nloss=2\n",  # timestamped lines keep their time
        "noise\nmore noise accuracy=0.5\n\n\nloss=7 accuracy=0.1\n",
    ],
)
def test_whole_chunks_give_what_the_line_by_line_parse_gives(text: str) -> None:
    names = ("loss", "accuracy")
    parser = StdOutParser(names)
    # Blank first line: the chunk's lines after it go through the block parse.
    chunked = parser.feed(b"\n" + text.encode())
    assert chunked == _line_by_line(text, names)
    assert parser.position == len(text.encode()) + 1


def test_steps_continue_across_block_and_line_parses() -> None:
    parser = StdOutParser(["loss"])
    points = parser.feed(b"\nloss=1\nloss=2\n") + parser.feed(b"x=1loss=3\n\nloss=4\n")
    assert [(p.value, p.step) for p in points] == [(1, 0), (2, 1), (3, 2), (4, 3)]
