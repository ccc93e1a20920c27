"""``Result._repr_html_``: how a result shows in Jupyter, a summary line and the trial table
(the columns of ``to_dataframe()``), every value escaped."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuner.api._result import Result

MAX_ROWS = 200
"""Trials shown in the table; the rest are counted below it (``to_dataframe()`` has all)."""


def result_html(result: Result) -> str:
    header, rows = result.table()
    best = result.best_trial
    summary = (
        f"<b>{_text(result.name)}</b>: {_text(result.status.value)}"
        f"{' (' + _text(result.reason) + ')' if result.reason else ''}, "
        f"{len(result.trials)} trial(s)"
    )
    if best is not None:
        summary += (
            f"; best <code>{_text(best.name)}</code> {_text(result.objective_metric)}="
            f"{_text(best.objective)} with {_text(best.parameters)}"
        )
    best_name = best.name if best is not None else None
    head = "".join(f"<th>{_text(name)}</th>" for name in header)
    body = []
    for row in rows[:MAX_ROWS]:
        style = ' style="font-weight:bold"' if row and row[0] == best_name else ""
        cells = "".join(f"<td>{'' if v is None else _text(v)}</td>" for v in row)
        body.append(f"<tr{style}>{cells}</tr>")
    more = ""
    if len(rows) > MAX_ROWS:
        more = f"<p>... and {len(rows) - MAX_ROWS} more trials (Result.to_dataframe())</p>"
    return (
        f'<div class="tuner-result"><p>{summary}</p>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"{more}</div>"
    )


def _text(value: Any) -> str:
    return html.escape(str(value))
