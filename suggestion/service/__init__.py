"""The gRPC side of the suggestion server: thin servicers over the algorithms.

`create_server(address) -> (server, port)` embeds it (started; port 0 picks a free port);
`run_server(address)` blocks until SIGTERM/SIGINT (``tuner suggestion-server``). Protobuf is
converted in `_convert` and `_trial_decoder` (a request's trials) only; `SuggestionEngine`
(no gRPC) can be driven directly.
"""

from __future__ import annotations

from suggestion.service._earlystopping import (
    LIVE_METADATA,
    STEPS_METADATA_KEY,
    STOP_TRIALS_METADATA_KEY,
    WITH_STEPS_METADATA,
)
from suggestion.service._server import (
    HEALTH_SERVICES,
    ServerError,
    create_server,
    main,
    run_server,
    stop_server,
)
from suggestion.service._sessions import (
    MAX_SUGGESTIONS_PER_REQUEST,
    SuggestionEngine,
    SuggestionRequest,
    SuggestionResult,
)
from suggestion.service._suggestion import EXHAUSTED_METADATA, MAX_CALLS_PER_EXPERIMENT
from suggestion.service._trial_decoder import TrialDecoder

__all__ = [
    "EXHAUSTED_METADATA",
    "HEALTH_SERVICES",
    "LIVE_METADATA",
    "MAX_CALLS_PER_EXPERIMENT",
    "MAX_SUGGESTIONS_PER_REQUEST",
    "STEPS_METADATA_KEY",
    "STOP_TRIALS_METADATA_KEY",
    "ServerError",
    "SuggestionEngine",
    "SuggestionRequest",
    "SuggestionResult",
    "TrialDecoder",
    "WITH_STEPS_METADATA",
    "create_server",
    "main",
    "run_server",
    "stop_server",
]
