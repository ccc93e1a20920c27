"""The opt-in cap on a trial's stored reports of each metric: which collected points to keep
and which stored ones to drop, decided deterministically from the points alone, so that a
controller resumed from its checkpoint keeps exactly the set an uninterrupted one would.

Per metric, at most ``limit`` evenly spread points are kept by stride: the reports whose
step is a multiple of ``stride`` (1, then doubled, and the stored points thinned, whenever
more than ``limit`` multiples would be kept). On top of these, whatever a decision reads
is always kept: the newest finite report (the trial's ``latest``), one report of the
smallest and one of the largest finite value (``min``, ``max``), the first ``head``
reports (and first ``head`` finite ones: medianstop's ``start_step``), and at each of the
``rungs`` the first finite report at or beyond it (asha).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tuner.metrics._types import MetricPoint, MetricsError


@dataclass(frozen=True)
class Rungs:
    """Steps ``first * factor**k`` (k = 0, 1, ...), below ``end`` when it is set."""

    first: int
    factor: int
    end: int | None = None

    def after(self, step: int) -> int | None:
        """The rung that follows ``step`` (a rung), or None past the last."""
        following = step * self.factor
        return None if self.end is not None and following >= self.end else following

    def start(self) -> int | None:
        return None if self.end is not None and self.first >= self.end else self.first


@dataclass(frozen=True)
class ObservationCap:
    """At most ``limit`` (>= 1) stride-kept reports per metric, plus what decisions read:
    the first ``head`` reports, the first finite report at each of ``rungs``. Metrics in
    ``exempt`` are kept whole."""

    limit: int
    head: int = 0
    rungs: Rungs | None = None
    exempt: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise MetricsError(f"limit: {self.limit!r} is not an integer >= 1")


@dataclass(frozen=True)
class Drop:
    """Stored points of ``metric`` to delete: those whose step is in ``steps``, and, when
    ``stride`` is set, every one whose step is not a multiple of it and not in ``keep``."""

    metric: str
    steps: frozenset[int] = frozenset()
    stride: int | None = None
    keep: frozenset[int] = frozenset()


@dataclass
class _MetricState:
    stride: int = 1
    finite: int = 0  # finite reports seen, counted up to the head
    next_rung: int | None = None
    pinned: set[int] = field(default_factory=set)  # head and rung reports: kept for good
    low: tuple[int, float] | None = None  # (step, value)
    high: tuple[int, float] | None = None
    latest: tuple[int, datetime] | None = None  # (step, timestamp)

    def specials(self) -> set[int]:
        return {s[0] for s in (self.low, self.high, self.latest) if s is not None}

    def to_json(self) -> dict[str, Any]:
        return {
            "stride": self.stride,
            "finite": self.finite,
            "next_rung": self.next_rung,
            "pinned": sorted(self.pinned),
            "low": None if self.low is None else list(self.low),
            "high": None if self.high is None else list(self.high),
            "latest": None if self.latest is None else [self.latest[0], self.latest[1].isoformat()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _MetricState:
        try:
            low, high, latest = data.get("low"), data.get("high"), data.get("latest")
            return cls(
                stride=int(data["stride"]),
                finite=int(data["finite"]),
                next_rung=None if data.get("next_rung") is None else int(data["next_rung"]),
                pinned={int(s) for s in data.get("pinned", ())},
                low=None if low is None else (int(low[0]), float(low[1])),
                high=None if high is None else (int(high[0]), float(high[1])),
                latest=None
                if latest is None
                else (int(latest[0]), datetime.fromisoformat(str(latest[1]))),
            )
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise MetricsError(f"checkpoint.cap: {dict(data)!r} is not a cap state") from e


class CapState:
    """Where the cap stands for one trial: JSON kept in the collector's checkpoint (and
    stored with each batch), so that a resumed controller decides as the first one would.
    Not thread-safe."""

    def __init__(self, cap: ObservationCap, data: Mapping[str, Any] | None = None) -> None:
        self.cap = cap
        self._metrics = {
            str(name): _MetricState.from_json(state) for name, state in (data or {}).items()
        }

    def to_json(self) -> dict[str, Any]:
        return {name: state.to_json() for name, state in sorted(self._metrics.items())}

    def admit(
        self, points: Sequence[MetricPoint], now: datetime
    ) -> tuple[list[MetricPoint], list[Drop]]:
        """The ``points`` (one batch, in report order; ``now`` the timestamp of those without
        one) to store, and the stored points to delete in the same transaction. Updates the
        state: store `to_json` with them."""
        kept: list[MetricPoint] = []
        drops: list[Drop] = []
        by_metric: dict[str, list[MetricPoint]] = {}
        for p in points:
            if p.name in self.cap.exempt or p.step is None:
                continue
            by_metric.setdefault(p.name, []).append(p)
        chosen: dict[str, set[int]] = {}
        for name, batch in by_metric.items():
            state = self._metrics.get(name)
            if state is None:
                state = self._metrics[name] = _MetricState(
                    next_rung=None if self.cap.rungs is None else self.cap.rungs.start()
                )
            drop = self._advance(name, state, batch, now)
            if drop is not None:
                drops.append(drop)
            stride, keep = state.stride, state.pinned | state.specials()
            steps = (p.step for p in batch)
            chosen[name] = {s for s in steps if s is not None and (s % stride == 0 or s in keep)}
        for p in points:
            if p.step is not None and p.name in chosen and p.step not in chosen[p.name]:
                continue
            kept.append(p)
        return kept, drops

    def _advance(
        self, name: str, state: _MetricState, batch: list[MetricPoint], now: datetime
    ) -> Drop | None:
        before_stride, before_specials = state.stride, state.specials()
        first_step = batch[0].step
        assert first_step is not None
        cap, rungs = self.cap, self.cap.rungs
        for p in batch:
            step = p.step
            assert step is not None
            finite = math.isfinite(p.value)
            if step < cap.head or (finite and state.finite < cap.head):
                state.pinned.add(step)
            if finite:
                state.finite = min(state.finite + 1, cap.head)
                while rungs is not None and state.next_rung is not None and step >= state.next_rung:
                    state.pinned.add(step)
                    state.next_rung = rungs.after(state.next_rung)
                if state.low is None or p.value < state.low[1]:
                    state.low = (step, p.value)
                if state.high is None or p.value > state.high[1]:
                    state.high = (step, p.value)
                stamp = p.timestamp or now
                if state.latest is None or stamp >= state.latest[1]:
                    state.latest = (step, stamp)
            while step // state.stride + 1 > cap.limit:
                state.stride *= 2
        keep = frozenset(state.pinned | state.specials())
        if state.stride != before_stride:
            return Drop(name, stride=state.stride, keep=keep)
        # Points that were kept as min / max / latest only, stored by an earlier batch.
        gone = {s for s in before_specials - keep if s < first_step and s % state.stride}
        return Drop(name, steps=frozenset(gone)) if gone else None
