"""The dashboard's ASGI app (Starlette): HTML pages that draw themselves from the JSON API
below them, plotly.js served from the installed `plotly` package, nothing written anywhere.

Pages: `/experiments`, `/experiments/NAME`, `/trials/NAME`. API (names are query parameters,
as experiment and trial names may hold any character): `/api/experiments`,
`/api/experiment?name=`, `/api/trials?experiment=`, `/api/trials.csv?experiment=`,
`/api/figure?experiment=&kind=`, `/api/trial?name=`, `/api/version?experiment=`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from tuner import _trial_table
from tuner.dashboard import _data
from tuner.dashboard._figures import FIGURES, Figures, Objective, Unavailable, objectives
from tuner.store import (
    ExperimentNotFoundError,
    ExperimentStatus,
    Store,
    StoreError,
    TrialNotFoundError,
)

log = logging.getLogger(__name__)

FIGURE_CACHE = 8
"""Experiments whose charts are kept (for the version they were drawn at)."""

_STATIC = Path(str(resources.files("tuner.dashboard") / "static"))
_HEADERS = {
    # The pages load only their own scripts; inline script is data, never code.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def plotly_js() -> Path:
    """plotly.min.js as the installed `plotly` package ships it (no CDN)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def json_script(value: Any) -> Markup:
    """JSON safe inside a <script type="application/json"> element: `<`, `>`, `&` escaped so
    a value holding `</script>` cannot end the element."""
    text = json.dumps(value, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


class Dashboard:
    """The app's state: the store it reads and the charts it has drawn."""

    def __init__(
        self,
        store: Store,
        *,
        poll_interval: float = 2.0,
        goals: Callable[[_data.ExperimentView], list[Objective]] | None = None,
    ) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self.goals = goals
        self._figures: OrderedDict[str, tuple[str, Figures, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self._templates = Environment(
            loader=PackageLoader("tuner.dashboard", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        self._templates.filters["json_script"] = json_script

    # -- pages -----------------------------------------------------------------------

    def page(self, template: str, **context: Any) -> Response:
        html = self._templates.get_template(template).render(
            poll_ms=int(self.poll_interval * 1000), **context
        )
        return Response(html, media_type="text/html; charset=utf-8", headers=_HEADERS)

    async def index(self, request: Request) -> Response:
        return RedirectResponse("/experiments")

    def experiments_page(self, request: Request) -> Response:
        return self.page("experiments.html", statuses=[s.value for s in ExperimentStatus])

    def experiment_page(self, request: Request) -> Response:
        name = request.path_params["name"]
        record = self._experiment(name)
        goals = (self.goals or objectives)(_data.ExperimentView.of(record))
        # The Pareto front has a place on the page only when there are several objectives.
        kinds = [k for k in FIGURES if k != "pareto" or len(goals) > 1]
        return self.page(
            "experiment.html",
            name=name,
            spec_yaml=_yaml(record),
            boot={"experiment": name, "figures": kinds},
        )

    def trial_page(self, request: Request) -> Response:
        name = request.path_params["name"]
        trial = self._call(lambda: self.store.get_trial(name))
        return self.page(
            "trial.html", name=name, experiment=trial.experiment_name, boot={"trial": name}
        )

    # -- API -------------------------------------------------------------------------

    def api_experiments(self, request: Request) -> Response:
        status = request.query_params.get("status") or None
        namespace = request.query_params.get("namespace") or None
        statuses = None
        if status is not None:
            try:
                statuses = [ExperimentStatus(status)]
            except ValueError:
                raise HTTPException(400, "unknown status") from None
        records = self._call(lambda: self.store.list_experiments(statuses))
        if namespace is not None:
            records = [r for r in records if r.namespace == namespace]
        rows = self._call(lambda: [_data.experiment_summary(self.store, r) for r in records])
        namespaces = sorted({r.namespace for r in records})
        return _json({"experiments": rows, "namespaces": namespaces})

    def api_experiment(self, request: Request) -> Response:
        name = _query(request, "name")
        record = self._experiment(name)
        summary = self._call(lambda: _data.experiment_summary(self.store, record))
        return _json({"summary": summary, "version": self._version(name)})

    def api_version(self, request: Request) -> Response:
        return _json({"version": self._version(_query(request, "experiment"))})

    def api_trials(self, request: Request) -> Response:
        name = _query(request, "experiment")
        view = _data.ExperimentView.of(self._experiment(name))
        trials = self._call(lambda: self.store.list_trials(name))
        return _json({**_data.trial_table(view, trials), "version": self._version(name)})

    def api_trials_csv(self, request: Request) -> Response:
        name = _query(request, "experiment")
        view = _data.ExperimentView.of(self._experiment(name))
        trials = self._call(lambda: self.store.list_trials(name))
        text = _trial_table.to_csv(view.table_trial(t) for t in trials)
        filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return PlainTextResponse(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}-trials.csv"'},
        )

    def api_figure(self, request: Request) -> Response:
        name = _query(request, "experiment")
        kind = _query(request, "kind")
        if kind not in FIGURES:
            raise HTTPException(404, "unknown figure")
        figures, cache = self._figures_of(name)
        if kind not in cache:
            try:
                # plotly's own encoder: numpy arrays, dates, NaN as null.
                figure = figures.figure(kind).to_json()
                body = f'{{"note": {json.dumps(figures.note(kind))}, "figure": {figure}}}'
            except Unavailable as e:
                body = json.dumps({"unavailable": str(e)})
            cache[kind] = body
        return Response(
            cache[kind], media_type="application/json", headers={"Cache-Control": "no-store"}
        )

    def api_trial(self, request: Request) -> Response:
        name = _query(request, "name")
        trial = self._call(lambda: self.store.get_trial(name))
        view = _data.ExperimentView.of(self._experiment(trial.experiment_name))
        return _json(self._call(lambda: _data.trial_details(self.store, view, trial)))

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    def plotly(self, request: Request) -> Response:
        return FileResponse(plotly_js(), media_type="text/javascript")

    def static(self, request: Request) -> Response:
        name = request.path_params["file"]
        path = _STATIC / name
        if "/" in name or not path.is_file():
            raise HTTPException(404, "not found")
        return FileResponse(path)

    # -- helpers ---------------------------------------------------------------------

    def _call(self, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except (ExperimentNotFoundError, TrialNotFoundError) as e:
            raise HTTPException(404, str(e)) from e
        except StoreError as e:
            # The store's messages mask passwords; the page still only says what failed.
            log.warning("reading the database failed: %s", e)
            raise HTTPException(503, "the database could not be read; see the log") from e

    def _experiment(self, name: str) -> Any:
        return self._call(lambda: self.store.get_experiment(name))

    def _version(self, name: str) -> str:
        record = self._experiment(name)
        counts = self._call(lambda: self.store.count_trials(name))
        return _data.version(record, counts)

    def _figures_of(self, name: str) -> tuple[Figures, dict[str, Any]]:
        version = self._version(name)
        with self._lock:
            cached = self._figures.get(name)
            if cached is not None and cached[0] == version:
                self._figures.move_to_end(name)
                return cached[1], cached[2]
        view = _data.ExperimentView.of(self._experiment(name))
        trials = self._call(lambda: self.store.list_trials(name))
        goals = None if self.goals is None else self.goals(view)

        def observations(trial: str) -> list[Any]:
            return list(self._call(lambda: self.store.get_observations(trial)))

        figures = Figures(view, trials, observations, goals)
        with self._lock:
            self._figures[name] = (version, figures, {})
            while len(self._figures) > FIGURE_CACHE:
                self._figures.popitem(last=False)
            return figures, self._figures[name][2]


def _query(request: Request, key: str) -> str:
    value = request.query_params.get(key)
    if not value:
        raise HTTPException(400, f"missing query parameter {key!r}")
    return value


def _json(document: Any) -> Response:
    return JSONResponse(document, headers={"Cache-Control": "no-store"})


def _yaml(record: Any) -> str:
    document = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": record.name, "namespace": record.namespace},
        "spec": record.spec,
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def create_app(
    store: Store,
    *,
    poll_interval: float = 2.0,
    goals: Callable[[_data.ExperimentView], list[Objective]] | None = None,
) -> Starlette:
    """The dashboard app over `store` (which the caller opens and closes).

    `poll_interval`: seconds between two looks of an open page at the store. `goals`: the
    objectives of an experiment (default: those of its spec), for the Pareto front.
    """
    d = Dashboard(store, poll_interval=poll_interval, goals=goals)
    routes = [
        Route("/", d.index),
        Route("/healthz", d.healthz),
        Route("/experiments", d.experiments_page),
        Route("/experiments/{name:path}", d.experiment_page),
        Route("/trials/{name:path}", d.trial_page),
        Route("/api/experiments", d.api_experiments),
        Route("/api/experiment", d.api_experiment),
        Route("/api/version", d.api_version),
        Route("/api/trials", d.api_trials),
        Route("/api/trials.csv", d.api_trials_csv),
        Route("/api/figure", d.api_figure),
        Route("/api/trial", d.api_trial),
        Route("/static/plotly.min.js", d.plotly),
        Route("/static/{file}", d.static),
    ]
    return Starlette(routes=routes)
