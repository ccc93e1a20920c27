"""`tuner dashboard`: a read-only web view of what a store holds, live, with Optuna's charts.

Needs the `dashboard` extra (`pip install 'tuner[dashboard]'`): Starlette, uvicorn, Jinja2,
plotly. See docs/dashboard.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner._lazy import lazy_exports

if TYPE_CHECKING:
    from tuner.dashboard._app import create_app
    from tuner.dashboard._server import (
        DEFAULT_ADDRESS,
        Address,
        AddressError,
        bind,
        server,
        url_of,
    )

_LAZY = {
    "create_app": "tuner.dashboard._app",
    "DEFAULT_ADDRESS": "tuner.dashboard._server",
    "Address": "tuner.dashboard._server",
    "AddressError": "tuner.dashboard._server",
    "bind": "tuner.dashboard._server",
    "server": "tuner.dashboard._server",
    "url_of": "tuner.dashboard._server",
}

__all__ = [
    "DEFAULT_ADDRESS",
    "Address",
    "AddressError",
    "bind",
    "create_app",
    "server",
    "url_of",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
