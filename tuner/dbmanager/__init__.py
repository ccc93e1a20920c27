"""Katib's DBManager gRPC service (``api.v1.beta1.DBManager``) backed by the store: where
trials push their metrics (``tuner.report_metrics``) and early stopping reads their logs.

The controller serves it in-process on a loopback port for the duration of a run
(``serve(store)``); ``create_server(store, address)`` embeds it elsewhere.
"""

from __future__ import annotations

from tuner.dbmanager._convert import UNAVAILABLE_VALUE, RequestError
from tuner.dbmanager._server import (
    SERVICE_NAME,
    WILDCARD_HOSTS,
    DBManagerError,
    create_server,
    serve,
)
from tuner.dbmanager._servicer import DBManagerServicer

__all__ = [
    "SERVICE_NAME",
    "UNAVAILABLE_VALUE",
    "WILDCARD_HOSTS",
    "DBManagerError",
    "DBManagerServicer",
    "RequestError",
    "create_server",
    "serve",
]
