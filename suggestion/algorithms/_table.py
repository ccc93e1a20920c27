"""The trials of a request column by column, as a sequence of `TrialView`s built on demand.

A request's trials arrive as one column per parameter (the service decodes them so, see
suggestion/service/_trial_decoder.py); most algorithms read only the number of trials, their
states and values and their points' keys, which `TrialTable` gives from the columns without
building a `TrialView` per trial. Indexing or iterating builds the views (once each) for the
algorithms that read trials one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from suggestion.algorithms._base import TrialState, TrialView
from tuner.space import Value

if TYPE_CHECKING:
    from suggestion.algorithms._points import Key, KeySet, PointSet

_NO_LABELS: Mapping[str, str] = {}


class TrialTable(Sequence[TrialView]):
    """Trials as columns: ``names``, ``states``, ``values`` (each trial's objective values,
    empty unless COMPLETED), ``columns`` (per parameter, every trial's value in trial order),
    completion and start times (a time may be held as its wire text, which ``read_time``
    reads when the view is built) and labels (None: no trial has any). Not to be mutated;
    `extended` makes a longer one. Equal to a list of the same views.

    ``texts``: float columns still held as the wire texts the decoder checked (each a
    plain decimal inside the space, whose value is its `float`), read on the first use of
    ``columns``; ``order`` then gives the parameters' order. `point_key_set` answers
    without reading them (`UnreadKeys`): random search never reads a value."""

    def __init__(
        self,
        names: list[str],
        states: list[TrialState],
        values: list[tuple[float, ...]],
        columns: Mapping[str, list[Value]],
        completed_at: list[datetime | str | None],
        started_at: list[datetime | str | None],
        labels: list[Mapping[str, str]] | None = None,
        *,
        float_columns: Iterable[str] = (),
        views: list[TrialView | None] | None = None,
        read_time: Callable[[str], datetime | None] | None = None,
        texts: Mapping[str, list[bytes]] | None = None,
        order: Sequence[str] | None = None,
    ) -> None:
        self.names = names
        self.states = states
        self.values = values
        # (read columns, unread texts), replaced whole when the texts are read: a concurrent
        # reader (a warm decode joining onto this table) sees one state or the other.
        self._data: tuple[dict[str, list[Value]], dict[str, list[bytes]]] = (
            dict(columns),
            dict(texts) if texts else {},
        )
        self.parameters: list[str] = (
            [p for p in order if p in columns or (texts and p in texts)]
            if order is not None
            else [*columns, *(texts or {})]
        )
        self.completed_at = completed_at
        self.started_at = started_at
        self.labels = labels
        self.read_time = read_time
        """Reads a time still held as its (checked) wire text, when a view is built."""
        self.float_columns = frozenset(float_columns)
        """Columns known to hold Python floats only (their points' keys are the values)."""
        self._views: list[TrialView | None] = views if views is not None else [None] * len(names)
        self._keys: tuple[PointSet, list[Key]] | None = None
        self._indices: tuple[PointSet, list[list[int]]] | None = None
        self._key_set: tuple[PointSet, KeySet] | None = None

    @classmethod
    def of(cls, views: Sequence[TrialView], parameters: Sequence[str]) -> TrialTable:
        """The table of ``views`` (whose assignments set every one of ``parameters``)."""
        views = list(views)
        columns = {p: [v.assignment[p] for v in views] for p in parameters}
        labels = [v.labels for v in views]
        return cls(
            [v.name for v in views],
            [v.state for v in views],
            [v.values for v in views],
            columns,
            [v.completed_at for v in views],
            [v.started_at for v in views],
            labels if any(labels) else None,
            float_columns=[p for p, c in columns.items() if all(type(x) is float for x in c)],
            views=list(views),
        )

    @property
    def columns(self) -> dict[str, list[Value]]:
        """Per parameter (in ``parameters`` order), every trial's value; reads the texts."""
        columns, unread = self._data
        if unread:
            read = dict(columns)
            for p, texts in unread.items():
                floats: list[Value] = list(map(float, texts))
                read[p] = floats
            # Replaced whole: a concurrent reader sees either state.
            columns = {p: read[p] for p in self.parameters}
            self._data = (columns, {})
        return columns

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, index: int) -> TrialView: ...

    @overload
    def __getitem__(self, index: slice) -> list[TrialView]: ...

    def __getitem__(self, index: int | slice) -> TrialView | list[TrialView]:
        if isinstance(index, slice):
            return [self._view(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._view(index)

    def __iter__(self) -> Iterator[TrialView]:
        for i in range(len(self)):
            yield self._view(i)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (TrialTable, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TrialTable({len(self)} trials)"

    def _view(self, i: int) -> TrialView:
        view = self._views[i]
        if view is None:
            values = self.values[i]
            view = self._views[i] = TrialView(
                self.names[i],
                {p: column[i] for p, column in self.columns.items()},
                self.states[i],
                values[0] if values else None,
                self._time(self.completed_at[i]),
                started_at=self._time(self.started_at[i]),
                values=values,
                labels=dict(self.labels[i]) if self.labels is not None else {},
            )
        return view

    def _time(self, when: datetime | str | None) -> datetime | None:
        if isinstance(when, str):
            assert self.read_time is not None
            return self.read_time(when)
        return when

    def point_keys(self, points: PointSet) -> list[Key]:
        """Every trial's point key in ``points`` (`PointSet.key` of its assignment), from the
        columns: one canonical value per distinct value of a column. Remembered."""
        known = self._keys
        if known is not None and known[0] is points:
            return known[1]
        parts = []
        # Grid indices per coordinate, from the same distinct values (`grid_indices`).
        indices: list[list[int]] | None = [] if points.size is not None else None
        for c in points.coordinates:
            column = self.columns[c.name]
            if c.size is None and not c.is_list and c.name in self.float_columns:
                parts.append(column)  # a stepless double's key is its float value
                continue
            canonical = {v: c.canonical(v) for v in dict.fromkeys(column)}
            parts.append(list(map(canonical.__getitem__, column)))
            if indices is not None:
                try:
                    own = {v: c.index(point) for v, point in canonical.items()}
                except ValueError:  # not a value of the list: `PointSet.index` says so
                    indices = None
                    continue
                indices.append(list(map(own.__getitem__, column)))
        keys: list[Key] = list(zip(*parts, strict=True)) if parts else [() for _ in self.names]
        self._keys = (points, keys)
        self._indices = (points, indices) if indices is not None else None
        return keys

    def grid_indices(self, points: PointSet) -> list[int] | None:
        """Every trial's grid index in the finite ``points`` (`PointSet.index` of its key),
        when `point_keys` could compute it from the columns' numbers; else None."""
        self.point_keys(points)
        known = self._indices
        if known is None or known[0] is not points or points.size is None or points.size >= 2**62:
            return None
        flat = np.zeros(len(self), dtype=np.int64)
        for c, found in zip(points.coordinates, known[1], strict=True):
            assert c.size is not None
            flat = flat * c.size + np.array(found, dtype=np.int64)
        return flat.tolist()

    def point_key_set(self, points: PointSet) -> KeySet:
        """The set of `point_keys` (remembered; not to be changed: copy it). A longer table
        made from this one (`extended`, `joined`, `merged`) starts from a copy of it."""
        known = self._key_set
        if known is None or known[0] is not points:
            keys: KeySet | None = UnreadKeys.of(self, points) if self._data[1] else None
            if keys is None:
                keys = set(self.point_keys(points))
            known = self._key_set = (points, keys)
        return known[1]

    def _grown_key_set(self, table: TrialTable, added: Iterable[Key]) -> None:
        """Give ``table`` (this one with trials whose keys are ``added`` after it) the set
        of its keys from this table's, when this one has it."""
        if self._key_set is not None and table._keys is not None:
            if table._keys[0] is self._key_set[0]:
                grown = self._key_set[1].copy()
                grown.update(added)
                table._key_set = (self._key_set[0], grown)

    def extended(self, views: Sequence[TrialView]) -> TrialTable:
        """This table followed by ``views`` (the service's pending points)."""
        if not views:
            return self
        more = TrialTable.of(views, self.parameters)
        labels: list[Mapping[str, str]] | None = None
        if self.labels is not None or more.labels is not None:
            labels = [
                *(self.labels or [_NO_LABELS] * len(self)),
                *(more.labels or [_NO_LABELS] * len(more)),
            ]
        table = TrialTable(
            self.names + more.names,
            self.states + more.states,
            self.values + more.values,
            {p: column + more.columns[p] for p, column in self.columns.items()},
            self.completed_at + more.completed_at,
            self.started_at + more.started_at,
            labels,
            float_columns=self.float_columns & more.float_columns,
            views=self._views + list(views),
            read_time=self.read_time,
        )
        if self._keys is not None:
            points, keys = self._keys
            table._keys = (points, keys + [points.key(v.assignment) for v in views])
            self._grown_key_set(table, table._keys[1][len(self) :])
        return table

    def merged(self, tail: TrialTable, rows: dict[str, int]) -> TrialTable:
        """This table with each trial of ``tail`` put in place of the trial of its name, or
        appended (in ``tail``'s order) when it has none; ``rows`` (each trial's row by name)
        is updated for the appended ones. Costs copies of the columns, no step per trial
        beyond ``tail``'s."""
        size = len(self)
        replace: list[tuple[int, int]] = []
        append: list[int] = []
        for j, name in enumerate(tail.names):
            row = rows.get(name)
            if row is None:
                rows[name] = size + len(append)
                append.append(j)
            else:
                replace.append((row, j))

        def merge(mine: list[Any], theirs: list[Any]) -> list[Any]:
            out = mine.copy()
            for row, j in replace:
                out[row] = theirs[j]
            out.extend(theirs[j] for j in append)
            return out

        labels: list[Mapping[str, str]] | None = None
        if self.labels is not None or tail.labels is not None:
            labels = merge(
                self.labels or [_NO_LABELS] * size, tail.labels or [_NO_LABELS] * len(tail)
            )
        table = TrialTable(
            merge(self.names, tail.names),
            merge(self.states, tail.states),
            merge(self.values, tail.values),
            {p: merge(column, tail.columns[p]) for p, column in self.columns.items()},
            merge(self.completed_at, tail.completed_at),
            merge(self.started_at, tail.started_at),
            labels,
            float_columns=self.float_columns & tail.float_columns,
            views=merge(self._views, tail._views),
            read_time=self.read_time or tail.read_time,
        )
        if self._keys is not None:
            points, keys = self._keys
            theirs = tail.point_keys(points)
            table._keys = (points, merge(keys, theirs))
            if all(keys[row] == theirs[j] for row, j in replace):  # no point changed
                self._grown_key_set(table, [theirs[j] for j in append])
        return table

    def joined(self, head: int, tail: TrialTable) -> TrialTable:
        """The first ``head`` trials of this table followed by ``tail`` (a warm decode)."""
        labels: list[Mapping[str, str]] | None = None
        if self.labels is not None or tail.labels is not None:
            labels = [
                *(self.labels or [_NO_LABELS] * len(self))[:head],
                *(tail.labels or [_NO_LABELS] * len(tail)),
            ]
        texts: dict[str, list[bytes]] = {}
        (mine, mine_texts), (theirs, their_texts) = self._data, tail._data
        if mine_texts and mine_texts.keys() == their_texts.keys():  # both still unread
            texts = {p: column[:head] + their_texts[p] for p, column in mine_texts.items()}
        else:
            mine, theirs = self.columns, tail.columns
        table = TrialTable(
            self.names[:head] + tail.names,
            self.states[:head] + tail.states,
            self.values[:head] + tail.values,
            {p: column[:head] + theirs[p] for p, column in mine.items()},
            self.completed_at[:head] + tail.completed_at,
            self.started_at[:head] + tail.started_at,
            labels,
            float_columns=self.float_columns & tail.float_columns,
            views=self._views[:head] + tail._views,
            read_time=self.read_time or tail.read_time,
            texts=texts,
            order=self.parameters,
        )
        if self._keys is not None:
            points, keys = self._keys
            table._keys = (points, keys[:head] + tail.point_keys(points))
            if head == len(self):
                self._grown_key_set(table, table._keys[1][head:])
        return table


class UnreadKeys(AbstractSet["Key"]):
    """The set of a `TrialTable`'s point keys (`KeySet`) while some of its columns are
    unread texts: one of them (the pivot) is read, and a key is looked up by its pivot
    value, then compared whole with that one trial's key, read from its texts. Answers as
    the set of `point_keys` would (and equals it); keys added are kept beside. Holds the
    table's columns, not the table (which holds this set: a reference cycle)."""

    def __init__(
        self,
        points: PointSet,
        columns: Mapping[str, list[Value]],
        texts: Mapping[str, list[bytes]],
        floats: frozenset[str],
        pivot: int,
        rows: dict[float, int],
    ) -> None:
        self._points = points
        self._columns = columns
        self._texts = texts
        self._floats = floats
        self._pivot = pivot
        self._rows = rows
        self._added: set[Key] = set()

    @classmethod
    def of(cls, table: TrialTable, points: PointSet) -> UnreadKeys | None:
        """The keys of ``table``, or None when its pivot values repeat (then the plain set)."""
        for pivot, c in enumerate(points.coordinates):
            columns, unread = table._data
            texts = unread.get(c.name)
            if texts is not None:
                values = list(map(float, texts))
                rows = dict(zip(values, range(len(values)), strict=True))
                if len(rows) != len(values):
                    return None
                return cls(points, columns, unread, table.float_columns, pivot, rows)
        return None

    def _key(self, i: int) -> Key:
        """Trial ``i``'s point key, as `TrialTable.point_keys` gives it."""
        key: list[Value] = []
        for c in self._points.coordinates:
            texts = self._texts.get(c.name)
            if texts is not None:
                key.append(float(texts[i]))
                continue
            value = self._columns[c.name][i]
            floats = c.size is None and not c.is_list and c.name in self._floats
            key.append(value if floats else c.canonical(value))
        return tuple(key)

    def __contains__(self, key: object) -> bool:
        if key in self._added:
            return True
        assert isinstance(key, tuple)
        row = self._rows.get(key[self._pivot])
        return row is not None and self._key(row) == key

    def __iter__(self) -> Iterator[Key]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def _all(self) -> set[Key]:
        return {self._key(i) for i in range(len(self._rows))} | self._added

    def add(self, key: Key) -> None:
        self._added.add(key)

    def update(self, keys: Iterable[Key]) -> None:
        self._added.update(keys)

    def copy(self) -> UnreadKeys:
        copied = UnreadKeys(
            self._points, self._columns, self._texts, self._floats, self._pivot, self._rows
        )
        copied._added = set(self._added)
        return copied
