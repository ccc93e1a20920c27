"""The api.v1.beta1.Suggestion servicer: protobuf in, engine call, protobuf out."""

from __future__ import annotations

import grpc

from suggestion.service import _convert
from suggestion.service._errors import rpc
from suggestion.service._sessions import SuggestionEngine, SuggestionRequest, validate
from tuner.protos import api_pb2, api_pb2_grpc

EXHAUSTED_METADATA = ("tuner-search-exhausted", "true")
"""Trailing metadata on a reply that holds fewer points than requested."""


class SuggestionServicer(api_pb2_grpc.SuggestionServicer):
    """Hosts every registered algorithm for many experiments, chosen per request by
    ``experiment.spec.algorithm.algorithm_name``."""

    def __init__(self, engine: SuggestionEngine) -> None:
        self.engine = engine

    @rpc()
    def GetSuggestions(
        self, request: api_pb2.GetSuggestionsRequest, context: grpc.ServicerContext
    ) -> api_pb2.GetSuggestionsReply:
        experiment = request.experiment
        name, settings = _convert.algorithm(experiment)
        space = _convert.search_space(experiment)
        result = self.engine.suggest(
            SuggestionRequest(
                experiment=experiment.name,
                algorithm=name,
                settings=settings,
                space=space,
                goal=_convert.goal(experiment),
                trials=_convert.trials(
                    request.trials, space, _convert.objective_metric(experiment)
                ),
                count=_convert.count(request),
            )
        )
        if result.exhausted:
            context.set_trailing_metadata((EXHAUSTED_METADATA,))
        return _convert.suggestions_reply(result.assignments, space)

    @rpc(unknown_algorithm=grpc.StatusCode.INVALID_ARGUMENT)
    def ValidateAlgorithmSettings(
        self, request: api_pb2.ValidateAlgorithmSettingsRequest, context: grpc.ServicerContext
    ) -> api_pb2.ValidateAlgorithmSettingsReply:
        name, settings = _convert.algorithm(request.experiment)
        validate(name, settings, _convert.search_space(request.experiment))
        return api_pb2.ValidateAlgorithmSettingsReply()
