"""Which gRPC status each error of ours maps to, applied by one decorator on every RPC."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from suggestion.algorithms import (
    CancelledError,
    ObjectivesNotSupportedError,
    SettingsError,
    SpaceNotSupportedError,
    UnknownAlgorithmError,
)
from suggestion.service._convert import RequestError
from suggestion.service._deltas import ResendFullError
from suggestion.service._sessions import RequestLimitError
from tuner.errors import TunerError

logger = logging.getLogger(__name__)


class UpstreamError(TunerError):
    """A service we depend on (the DBManager) failed; worth retrying (UNAVAILABLE)."""


class BusyError(Exception):
    """Too many calls in flight (for one experiment or in all); worth retrying later."""


_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (RequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (RequestLimitError, grpc.StatusCode.INVALID_ARGUMENT),
    (CancelledError, grpc.StatusCode.CANCELLED),
    (BusyError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (SettingsError, grpc.StatusCode.INVALID_ARGUMENT),
    (SpaceNotSupportedError, grpc.StatusCode.INVALID_ARGUMENT),
    (ObjectivesNotSupportedError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownAlgorithmError, grpc.StatusCode.NOT_FOUND),
    (UpstreamError, grpc.StatusCode.UNAVAILABLE),
    (ResendFullError, grpc.StatusCode.FAILED_PRECONDITION),
)

F = TypeVar("F", bound=Callable[..., Any])


def status_of(error: Exception) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def rpc(
    unknown_algorithm: grpc.StatusCode = grpc.StatusCode.NOT_FOUND,
) -> Callable[[F], F]:
    """Run a servicer method, aborting with the mapped status and the error's own message.

    ``unknown_algorithm`` overrides NOT_FOUND for the Validate* methods: Katib's controller
    reads INVALID_ARGUMENT there as "refused" (and UNIMPLEMENTED as "accepted").
    """

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return method(self, request, context)
            except Exception as e:  # noqa: BLE001 - every error becomes a status, none is lost
                code = status_of(e)
                if isinstance(e, UnknownAlgorithmError):
                    code = unknown_algorithm
                if code is grpc.StatusCode.INTERNAL:
                    logger.exception("%s failed", method.__name__)
                    message = f"{type(e).__name__}: {e}"
                else:
                    logger.info("%s refused: %s", method.__name__, e)
                    message = str(e)
                # A status message travels in a header (16 KB at most): never send a whole value.
                context.abort(code, message if len(message) <= 2000 else message[:2000] + "...")

        return wrapper  # type: ignore[return-value]

    return decorate
