"""Incremental GetSuggestions requests: the trials a server holds per experiment, so that a
client that negotiated it sends only the trials that are new or changed since its last call.

Katib's contract sends every trial in every request (quadratic over an experiment); Katib's
messages stay as they are and the mode is negotiated in gRPC metadata (suggestion/README.md,
"Incremental requests"). A server that does not hold what a delta builds on (restarted,
evicted the experiment, another client started over) refuses it with FAILED_PRECONDITION and
``tuner-trials-resend: full``; the client then sends the request again in full. No gRPC in
here: the servicer reads and writes the metadata.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from suggestion.algorithms import TrialTable, TrialView
from suggestion.service._trial_decoder import TrialDecoder
from tuner.errors import TunerError
from tuner.space import SearchSpace

DELTA_KEY = "tuner-trials-delta"
"""Request metadata: ``offer`` on a full request (the client can send deltas), or the epoch
of the trials the server holds, on a delta request."""
COUNT_KEY = "tuner-trials-count"
"""Request metadata of a delta request: how many trials the experiment has in all."""
EPOCH_KEY = "tuner-trials-epoch"
"""Reply metadata: the epoch of the trials the server now holds for the experiment."""
HELD_KEY = "tuner-trials-held"
"""Reply metadata: how many trials the server now holds for the experiment."""
RESEND_KEY = "tuner-trials-resend"
"""Metadata of a refused delta request (FAILED_PRECONDITION): ``full``."""
OFFER = "offer"


class ResendFullError(TunerError):
    """A delta request the server cannot apply; the client must send the trials in full."""


@dataclass
class _Held:
    """One experiment's decoder and, once a client negotiated deltas, the trials it sent."""

    decoder: TrialDecoder
    epoch: str | None = None
    table: TrialTable | None = None
    """The trials held under ``epoch``."""
    rows: dict[str, int] | None = None
    """Each held trial's row by name (made when the first delta comes)."""
    lock: threading.Lock = field(default_factory=threading.Lock)


class TrialLedger:
    """Per experiment (at most ``max_experiments``, least recently used evicted first): the
    trial decoder, and the trials of the last full-with-offer or delta request under an epoch.

    `trials` returns the request's complete trial list, in the client's order, and the epoch
    to answer with (None for a request that did not offer deltas). Thread-safe; calls for one
    experiment are serialised. A delta is applied by name (a changed trial replaces the held
    one in its place, a new one is appended), so sending the same delta twice, or a delta
    from an older base than the server holds, gives the same trials: a client that lost a
    reply can resend from what it knows was received.
    """

    def __init__(self, max_experiments: Callable[[], int]) -> None:
        self._max = max_experiments
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self._lock = threading.Lock()
        self._instance = uuid.uuid4().hex[:12]
        self._serial = itertools.count(1)

    def decoder(self, experiment: str, space: SearchSpace, metrics: tuple[str, ...]) -> _Held:
        with self._lock:
            held = self._held.get(experiment)
            if held is None or held.decoder.space != space or held.decoder.metrics != metrics:
                # A new space or objective: what was held was decoded for the old one.
                held = self._held[experiment] = _Held(TrialDecoder(space, metrics))
            self._held.move_to_end(experiment)
            while len(self._held) > self._max():
                self._held.popitem(last=False)
            return held

    def trials(
        self,
        experiment: str,
        space: SearchSpace,
        metrics: tuple[str, ...],
        blobs: Sequence[bytes],
        delta: str | None,
        count: str | None,
    ) -> tuple[Sequence[TrialView], str | None]:
        """The trials of a request (``blobs``: serialised, `_convert.trial_bytes`) whose
        ``tuner-trials-delta`` metadata is ``delta`` (and ``tuner-trials-count`` is
        ``count``), and the epoch to reply with.

        Raises `ResendFullError` for a delta the server cannot apply, and the decoder's
        `RequestError` for a malformed trial.
        """
        held = self.decoder(experiment, space, metrics)
        with held.lock:
            if delta is None or delta == OFFER:
                table = held.decoder.table(blobs)
                if delta == OFFER:
                    held.table, held.rows = table, None
                    held.epoch = f"{self._instance}.{next(self._serial)}"
                    return table, held.epoch
                return table, None
            if held.epoch is None or delta != held.epoch or held.table is None:
                raise ResendFullError(
                    f"{DELTA_KEY}: this server holds no trials of experiment {experiment!r}"
                    f" under epoch {delta!r} (it restarted, evicted the experiment, or another"
                    " client started over); send the trials in full"
                )
            sent = held.decoder.table(blobs, remember=False)
            if held.rows is None:
                held.rows = {name: row for row, name in enumerate(held.table.names)}
            # Replaced by name in place, new ones appended: only the columns are copied.
            table = held.table.merged(sent, held.rows)
            if count is None or not count.isdigit() or int(count) != len(table):
                holds = len(table)
                held.epoch, held.table, held.rows = None, None, None
                raise ResendFullError(
                    f"{COUNT_KEY}: {count!r} trials, and the server holds {holds} of"
                    f" experiment {experiment!r} after this delta; send the trials in full"
                )
            held.table = table
            return table, held.epoch
