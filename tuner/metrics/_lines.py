"""Incremental, memory-bounded line parsing: the base of the stdout and JSON-line parsers."""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable, Mapping

from tuner.metrics._types import MetricPoint, MetricsError

MAX_LINE_BYTES = 1024 * 1024
"""A longer line is discarded (counted and logged): a trial cannot exhaust our memory."""

_log = logging.getLogger("tuner.metrics")


class LineParser(abc.ABC):
    """Turns a byte stream, fed in chunks of any size, into :class:`MetricPoint` s.

    Call :meth:`feed` with output as it arrives and :meth:`close` once at the end (it parses
    a last line that has no newline). Lines end at ``\\n`` or ``\\r`` (progress bars redraw
    with ``\\r``; splitting there keeps their lines short). Only the current unfinished line
    is buffered, and at most ``max_line_bytes`` of it: a longer line is skipped to its end
    and counted in :attr:`discarded_lines`.

    :attr:`position` is the stream offset just after the last whole line parsed: feeding the
    stream again from there (with ``start_steps`` = :attr:`steps`) continues exactly where
    this parser stopped, without losing or repeating a report. Not thread-safe.
    """

    def __init__(
        self,
        metric_names: Iterable[str],
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        start_position: int = 0,
        start_steps: Mapping[str, int] | None = None,
    ) -> None:
        self.metric_names = tuple(dict.fromkeys(metric_names))
        if not self.metric_names or not all(isinstance(n, str) and n for n in self.metric_names):
            raise MetricsError(f"metric_names: {metric_names!r} must be non-empty metric names")
        if max_line_bytes < 1:
            raise MetricsError(f"max_line_bytes: {max_line_bytes!r} is not positive")
        self.max_line_bytes = max_line_bytes
        self.discarded_lines = 0
        self._steps = {name: 0 for name in self.metric_names}
        self._steps.update(start_steps or {})
        self._buffer = bytearray()
        self._discarding = False
        self._position = start_position
        self._line_start = start_position  # stream offset of the unfinished line
        self._line_length = 0  # its bytes so far, discarded ones included
        self._closed = False

    @property
    def position(self) -> int:
        """Stream offset just after the last whole line parsed (a safe resume point)."""
        return self._position

    @property
    def steps(self) -> dict[str, int]:
        """Reports seen so far per metric: the next report of ``name`` gets step steps[name]."""
        return dict(self._steps)

    @property
    def buffered_bytes(self) -> int:
        """Size of the unfinished line kept in memory (never more than ``max_line_bytes``)."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[MetricPoint]:
        """Parse the lines that ``chunk`` completes; keep its unfinished tail for later."""
        if self._closed:
            raise MetricsError("feed: the parser was closed")
        chunk = chunk.replace(b"\r", b"\n")
        last = chunk.rfind(b"\n")
        if last < 0:
            self._append(chunk)
            return []
        first = chunk.find(b"\n")
        points: list[MetricPoint] = []
        line = self._end_line(chunk[:first], terminator=1)  # completes the buffered line
        if line is not None:
            points += self._parse_line(line)
        if last > first:
            # Whole lines, each ending with a newline: parsed as one block (see _parse_block).
            block = chunk[first + 1 : last + 1]
            points += self._parse_block(block)
            self._line_start += len(block)
            self._position = self._line_start
        self._append(chunk[last + 1 :])
        return points

    def _parse_block(self, block: bytes) -> list[MetricPoint]:
        """The reports on ``block``: complete lines, each ending with ``\\n``. This one
        parses line by line (discarding those longer than ``max_line_bytes``); a subclass
        may parse the whole block at once when that gives the same reports."""
        points: list[MetricPoint] = []
        parse = self._parse_line
        for line in block.split(b"\n")[:-1]:
            if len(line) > self.max_line_bytes:
                self.discarded_lines += 1
                _log.warning(
                    "metrics: discarded a line of %d bytes (longer than %d bytes)",
                    len(line),
                    self.max_line_bytes,
                )
                continue
            points += parse(line)
        return points

    def close(self) -> list[MetricPoint]:
        """Parse the last line if the stream did not end with a newline."""
        if self._closed or self._line_length == 0:
            self._closed = True
            return []
        self._closed = True
        line = self._end_line(b"", terminator=0)
        return [] if line is None else self._parse_line(line)

    def _append(self, piece: bytes) -> None:
        self._line_length += len(piece)
        if self._discarding:
            return
        if len(self._buffer) + len(piece) > self.max_line_bytes:
            self._buffer.clear()
            self._discarding = True
        else:
            self._buffer += piece

    def _end_line(self, piece: bytes, terminator: int) -> bytes | None:
        """Finish the current line with ``piece``; its bytes, or None if it was too long."""
        self._append(piece)
        if self._discarding:
            line = None
            self.discarded_lines += 1
            _log.warning(
                "metrics: discarded a line of %d bytes at offset %d (longer than %d bytes)",
                self._line_length,
                self._line_start,
                self.max_line_bytes,
            )
        else:
            line = bytes(self._buffer)
        self._line_start += self._line_length + terminator
        self._position = self._line_start
        self._buffer.clear()
        self._discarding = False
        self._line_length = 0
        return line

    def _next_step(self, name: str) -> int:
        step = self._steps.get(name, 0)
        self._steps[name] = step + 1
        return step

    @abc.abstractmethod
    def _parse_line(self, line: bytes) -> list[MetricPoint]:
        """The metric reports on one complete line (without its line terminator)."""
