"""Katib's text metrics format (``name=value``, regex filters, optional leading timestamp),
as written to stdout (the StdOut collector) or to a text metrics file."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from tuner.metrics._lines import MAX_LINE_BYTES, LineParser
from tuner.metrics._types import MetricPoint, MetricsError
from tuner.metrics._values import parse_number, parse_rfc3339

DEFAULT_METRICS_FORMAT = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
"""Katib's ``DefaultFilter`` (pkg/metricscollector/v1beta1/common/const.go), verbatim."""

# The default filter's "= value" part as it matches within one line (its \s never crosses a
# line end), for parsing a block of lines at once; and the start of a line that may begin
# with a timestamp.
_IN_LINE_VALUE = r"[ \t\f\v]*=[ \t\f\v]*([+-]?\d*(?:\.\d+)?(?:[Ee][+-]?\d+)?)"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_|-")
_TIMESTAMP = rb"\d{4}-\d{2}-\d{2}[Tt]"
_TIMESTAMP_FIRST = re.compile(_TIMESTAMP)
_TIMESTAMP_LATER = re.compile(rb"\n" + _TIMESTAMP)  # a literal start: a fast search
_VALUE_CHARS = frozenset("0123456789+-.Ee")


def compile_metrics_formats(filters: Sequence[str] | None) -> list[re.Pattern[str]]:
    """The ``metricsFormat`` regexes, or Katib's default when there are none.

    Group 1 of each is the metric name and group 2 its value (Katib's rule). They are
    compiled with ``re.ASCII`` so that ``\\d``, ``\\w`` and ``\\s`` mean what they mean in
    Go, where Katib evaluates them.
    """
    patterns = list(filters or ()) or [DEFAULT_METRICS_FORMAT]
    compiled = []
    for i, pattern in enumerate(patterns):
        field = f"metricsCollectorSpec.source.filter.metricsFormat[{i}]"
        try:
            regex = re.compile(pattern, re.ASCII)
        except (re.error, TypeError) as e:
            raise MetricsError(
                f"{field}: {pattern!r} is not a valid regular expression: {e}"
            ) from e
        if regex.groups < 2:
            raise MetricsError(
                f"{field}: {pattern!r} has {regex.groups} group(s); it needs two: (name) then"
                " (value)"
            )
        compiled.append(regex)
    return compiled


class StdOutParser(LineParser):
    """Parses Katib's text format, incrementally (see :class:`LineParser`).

    As Katib does: a line is looked at only if it contains one of ``metric_names``; if its
    first space-separated word is an RFC 3339 timestamp, its reports get that time; every
    match of every filter on the line is a report (``loss=0.1 accuracy=0.9`` gives two),
    kept if its name is one of ``metric_names``. Unlike Katib, values that are not plain
    finite numbers (``loss=nan``, ``loss=abc``) are skipped instead of stored as text.
    """

    def __init__(
        self,
        metric_names: Iterable[str],
        filters: Sequence[str] | None = None,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        start_position: int = 0,
        start_steps: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(
            metric_names,
            max_line_bytes=max_line_bytes,
            start_position=start_position,
            start_steps=start_steps,
        )
        self.filters = compile_metrics_formats(filters)
        self._wanted = frozenset(self.metric_names)
        self._needles = [name.encode() for name in self.metric_names]
        self._block_regex: re.Pattern[str] | None = None
        # Names with other characters than the filter's name characters never match it;
        # names that could be read as a value are left to the line-by-line parse.
        plain = sorted((n for n in self._wanted if set(n) <= _NAME_CHARS), key=len, reverse=True)
        numeric = any(set(n) <= _VALUE_CHARS for n in plain)
        if plain and not numeric and [f.pattern for f in self.filters] == [DEFAULT_METRICS_FORMAT]:
            names = "|".join(re.escape(n) for n in plain)
            self._block_regex = re.compile(f"({names}){_IN_LINE_VALUE}", re.ASCII)

    def _parse_block(self, block: bytes) -> list[MetricPoint]:
        # With Katib's default filter and no line starting with a timestamp, one scan of the
        # whole block for the wanted names finds the reports the line-by-line parse finds,
        # several times faster: Katib's match is the longest run of name characters before
        # "=", so a wanted name counts only where no name character precedes it.
        regex = self._block_regex
        if (
            regex is None
            or len(block) > self.max_line_bytes
            or _TIMESTAMP_FIRST.match(block) is not None
            or _TIMESTAMP_LATER.search(block) is not None
        ):
            return super()._parse_block(block)
        text = block.decode("utf-8", errors="replace")
        steps, name_chars = self._steps, _NAME_CHARS
        saved = dict(steps)
        points: list[MetricPoint] = []
        append = points.append
        for match in regex.finditer(text):
            start = match.start()
            if start and text[start - 1] in name_chars:
                if text[start - 1] in "0123456789-":
                    # Maybe glued to the value of an earlier match ("x=1loss=2"), which
                    # Katib's filter reports: leave the block to the line-by-line parse.
                    self._steps = saved
                    return super()._parse_block(block)
                continue  # part of a longer name ("val_loss")
            try:
                value = float(match.group(2))
            except ValueError:  # "", "-", "e5": what the filter matches that is no number
                continue
            if value - value != 0:  # inf or nan
                continue
            name = match.group(1)
            step = steps[name]
            steps[name] = step + 1
            append(MetricPoint(name, value, None, step))
        return points

    def _parse_line(self, line: bytes) -> list[MetricPoint]:
        if not any(needle in line for needle in self._needles):
            return []  # cheap skip of the lines that are not metrics, as Katib does
        text = line.decode("utf-8", errors="replace")
        first_word, space, _ = text.partition(" ")
        timestamp = parse_rfc3339(first_word) if space else None
        points = []
        for regex in self.filters:
            for match in regex.finditer(text):
                name, raw_value = match.group(1), match.group(2)
                if name is None or raw_value is None:
                    continue
                name = name.strip()
                value = parse_number(raw_value)
                if name in self._wanted and value is not None:
                    points.append(MetricPoint(name, value, timestamp, self._next_step(name)))
        return points
