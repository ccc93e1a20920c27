"""A trial printing hundreds of megabytes, some of it in endless lines, is parsed in bounded
memory: the parser keeps at most one capped partial line."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

from tuner.metrics import MAX_LINE_BYTES, StdOutParser

CHUNK = 64 * 1024
ROUND_CHUNKS = 8 + 128
ROUNDS = -(-200 * 1024 * 1024 // (ROUND_CHUNKS * CHUNK))  # enough rounds for 200 MB


def _stream() -> Iterator[bytes]:
    """A metric line, then per round: a 512 KiB line (under the cap, kept whole), 8 MiB
    without any newline (discarded), and a metric line ``loss=<round>``."""
    text = b"x" * CHUNK
    text_end = b"x" * (CHUNK - 1) + b"\n"
    endless = b"y" * CHUNK
    yield b"loss=100\n"
    for round_no in range(1, ROUNDS + 1):
        yield from [text] * 7 + [text_end]
        yield from [endless] * 128
        yield f"\nloss={round_no}\n".encode()


def test_200_mb_stream_keeps_the_buffer_under_the_cap() -> None:
    parser = StdOutParser(["loss"])
    peak_buffer, points, fed = 0, [], 0
    tracemalloc.start()
    try:
        for chunk in _stream():
            fed += len(chunk)
            points += parser.feed(chunk)
            peak_buffer = max(peak_buffer, parser.buffered_bytes)
        points += parser.close()
        _, peak_allocated = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fed >= 200 * 1024 * 1024
    assert peak_buffer <= MAX_LINE_BYTES
    # The buffer, a copy of one whole line, and the chunk being split: a few MiB, not 200.
    assert peak_allocated < 8 * MAX_LINE_BYTES
    # Every metric line around the discarded stretches was parsed, in order.
    assert [p.value for p in points] == [100.0] + [float(i) for i in range(1, ROUNDS + 1)]
    assert parser.discarded_lines == ROUNDS
