"""JsonLineParser: Katib's JSON-lines metrics format, for the File collector."""

from __future__ import annotations

from datetime import datetime, timezone

from tuner.metrics import JsonLineParser


def _parse(text: str, names=("loss", "accuracy")):
    parser = JsonLineParser(names)
    return parser, parser.feed(text.encode()) + parser.close()


def test_string_and_number_values_of_the_named_metrics_are_read() -> None:
    _, points = _parse('{"loss": "0.25", "accuracy": 0.75, "epoch": 3, "foo": "bar"}\n')
    assert [(p.name, p.value, p.step) for p in points] == [("loss", 0.25, 0), ("accuracy", 0.75, 0)]


def test_timestamp_key_as_rfc3339_or_epoch_seconds() -> None:
    _, points = _parse(
        '{"loss": "1", "timestamp": "2024-01-02T03:04:05Z"}\n'
        '{"loss": "2", "timestamp": 1704164645.5}\n'
        '{"loss": "3", "timestamp": "not a time"}\n'
    )
    assert [p.timestamp for p in points] == [
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=timezone.utc),
        None,
    ]


def test_invalid_and_blank_lines_are_skipped_and_counted() -> None:
    parser, points = _parse(
        '{"loss": "1"}\n\nnot json\n[1, 2]\n{"loss": "nan", "accuracy": true}\n{"loss": 2}'
    )
    assert [(p.value, p.step) for p in points] == [(1.0, 0), (2.0, 1)]
    assert parser.invalid_lines == 2


def test_objects_split_across_chunks_parse_once_complete() -> None:
    parser = JsonLineParser(["loss"])
    assert parser.feed(b'{"lo') == []
    assert [p.value for p in parser.feed(b'ss": "0.5"}\n')] == [0.5]
