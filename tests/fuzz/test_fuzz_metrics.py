"""Fuzzing metric lines: Katib's text format (with and without custom filters) and JSON lines,
fed in chunks of any size. Nothing raises; every value parsed is a finite float of a
wanted metric; feeding the same bytes in other chunks gives the same points."""

from __future__ import annotations

import math
import os

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tuner.metrics import JsonLineParser, StdOutParser

SCALE = 25 if os.environ.get("TUNER_FUZZ_PROFILE") == "fuzz" else 1
METRICS = ("loss", "accuracy", "val-acc")

pieces = st.one_of(
    st.sampled_from(
        [
            b"loss=",
            b"accuracy=",
            b"val-acc=",
            b"0.5",
            b"-1e308",
            b"1e999",
            b"nan",
            b"inf",
            b" ",
            b"\n",
            b"\r",
            b"=",
            b"{",
            b"}",
            b'"loss": ',
            b"2024-01-02T03:04:05Z ",
            b'"timestamp": ',
            b"\xff\xfe",
            b"\x00",
        ]
    ),
    st.binary(max_size=20),
)
streams = st.lists(pieces, max_size=40).map(b"".join)


def _check(points: list) -> None:
    for point in points:
        assert point.name in METRICS
        assert isinstance(point.value, float) and math.isfinite(point.value)
        assert point.step >= 0


def _feed(parser: StdOutParser | JsonLineParser, data: bytes, cuts: list[int]) -> list:
    points, start = [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        points += parser.feed(data[start:cut])
        start = cut
    points += parser.feed(data[start:])
    return points + parser.close()


@settings(max_examples=500 * SCALE)
@example(b"loss=1e400\nloss=nan\naccuracy=0.5", [3])
@example(b"x" * 70_000 + b"\nloss=0.25\n", [1000, 65_536])
@given(streams, st.lists(st.integers(min_value=0), max_size=5))
def test_text_lines_parse_without_error_and_chunking_does_not_matter(
    data: bytes, cuts: list[int]
) -> None:
    whole = _feed(StdOutParser(METRICS), data, [])
    _check(whole)
    assert _feed(StdOutParser(METRICS), data, cuts) == whole


@settings(max_examples=200 * SCALE)
@given(streams, st.sampled_from([r"([\w|-]+)\s*:\s*([+-]?\d*(\.\d+)?)", r"(\w+)=(\S+)"]))
def test_custom_filters_parse_without_error(data: bytes, regex: str) -> None:
    _check(_feed(StdOutParser(METRICS, [regex]), data, []))


@settings(max_examples=500 * SCALE)
@example(b'{"loss": "1e999", "timestamp": 1e300}\n{"loss": []}\n[1]\n', [5])
@example(b'{"loss": 0.5, "timestamp": "not a time"}\n', [])
@given(
    st.one_of(
        streams,
        st.lists(
            st.dictionaries(
                st.sampled_from([*METRICS, "timestamp", "other"]),
                st.one_of(st.floats(), st.text(max_size=8), st.integers(), st.none()),
            ),
            max_size=5,
        ).map(lambda records: b"\n".join(repr(r).replace("'", '"').encode() for r in records)),
    ),
    st.lists(st.integers(min_value=0), max_size=5),
)
def test_json_lines_parse_without_error(data: bytes, cuts: list[int]) -> None:
    whole = _feed(JsonLineParser(METRICS), data, [])
    _check(whole)
    assert _feed(JsonLineParser(METRICS), data, cuts) == whole
