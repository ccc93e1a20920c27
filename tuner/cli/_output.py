"""How the inspection commands print: JSON/YAML documents for machines, rich tables for people,
and the few value formats (numbers, times, ages) both share."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

NONE = "<none>"


def emit(document: Any, fmt: str) -> None:
    """Print `document` (plain JSON values, non-finite floats already made strings) as JSON or
    YAML; keys keep their insertion order, which the commands keep fixed."""
    if fmt == "json":
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False))
        sys.stdout.write("\n")
    elif fmt == "yaml":
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    else:  # pragma: no cover - argparse restricts the choices
        raise ValueError(f"output format: {fmt!r} is not json or yaml")


def console() -> Console:
    """A console for stdout: no markup (user text may contain brackets), and, when stdout is
    not a terminal, no colour and no wrapping, so piped tables keep one row per line."""
    tty = sys.stdout.isatty()
    return Console(
        markup=False,
        highlight=False,
        emoji=False,
        soft_wrap=False,
        width=None if tty else 10_000,
        no_color=not tty,
    )


def show(renderable: Any) -> None:
    """Print a table or a describe view; piped, without the trailing blanks rich pads with."""
    out = console()
    if sys.stdout.isatty():
        out.print(renderable)
        return
    with out.capture() as captured:
        out.print(renderable)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def table(*headers: str, right: Iterable[str] = ()) -> Table:
    """A kubectl-style table: upper-case headers, no borders; `right` columns right-aligned."""
    aligned = set(right)
    out = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for header in headers:
        out.add_column(header.upper(), justify="right" if header in aligned else "left")
    return out


def fields(rows: Sequence[tuple[str, Any]]) -> Table:
    """`Label:  value` lines, aligned, as `kubectl describe` prints them."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for label, value in rows:
        grid.add_row(f"{label}:", value if not isinstance(value, str) else value or NONE)
    return grid


def number(value: float | None) -> float | str | None:
    """A float for JSON/YAML: NaN and infinities (which JSON lacks) become "NaN", "Infinity",
    "-Infinity", as in `tuner run --output`."""
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def timestamp(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`, or None."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def cell(value: Any) -> str:
    """A value in a table cell: numbers short (6 significant digits), None as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, ".6g") if math.isfinite(value) else str(number(value))
    return str(value)


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, as kubectl's AGE column: 42s, 5m, 3h, 12d."""
    if moment is None:
        return ""
    now = now or datetime.now(timezone.utc)
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def when(moment: datetime | None) -> str:
    """A timestamp with its age, for describe output: `2024-05-01T10:00:00Z (5m ago)`."""
    if moment is None:
        return NONE
    return f"{timestamp(moment)} ({age(moment)} ago)"
