"""A servicer and what it decoded are freed by reference counting when dropped: no
reference cycle among the servicer, its trial decoders, their tables and the tables' key
sets, so a 1000-trial table never waits for (and never slows) the cyclic GC."""

from __future__ import annotations

import gc
import random
from typing import Any

import pytest

from suggestion.service import SuggestionEngine
from suggestion.service._suggestion import ReceivedRequest, SuggestionServicer


class _Context:
    """What GetSuggestions reads of a gRPC context (no gRPC objects: they have cycles)."""

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def time_remaining(self) -> None:
        return None

    def is_active(self) -> bool:
        return True

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass

    def abort(self, code: Any, message: str) -> None:
        raise AssertionError(f"{code}: {message}")


@pytest.mark.parametrize("algorithm", ["random", "grid"])
def test_a_dropped_servicer_leaves_no_cyclic_garbage(kit: Any, algorithm: str) -> None:
    rng = random.Random(1)
    step = "0.25" if algorithm == "grid" else ""
    params = [kit.param(n, "double", min="0", max="1", step=step) for n in ("a", "b")]
    params.append(kit.param("n", "int", min="0", max="9"))
    experiment = kit.experiment(algorithm, params, settings={"random_state": "3"})
    trials = [
        kit.trial(
            f"t{i}",
            {"a": str(rng.choice([0.25, 0.5])) if step else repr(rng.random()),
             "b": str(i % 5 / 4) if step else repr(rng.random()),
             "n": str(i % 10)},
            value=rng.random(),
        )
        for i in range(200)
    ]  # fmt: skip
    data = kit.request(experiment, trials, 4).SerializeToString()
    gc.collect()
    gc.disable()
    try:
        servicer = SuggestionServicer(SuggestionEngine())
        for _ in range(2):  # cold, then warm (the decoder joins onto what it held)
            reply = servicer.GetSuggestions(ReceivedRequest.parse(data), _Context())
            assert len(reply.parameter_assignments) == 4
        del servicer, reply
        assert gc.collect() == 0
    finally:
        gc.enable()
