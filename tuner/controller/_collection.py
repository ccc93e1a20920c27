"""How a trial's metrics reach the store: the environment tuner gives every trial, where a
File collector's metrics file is on this machine, a collector's output streamed to the store
in bounded batches (each with its checkpoint), and a trial's metrics read back from the
store when it ends (its observation log, whoever wrote it: a collector or the trial), thinned to the
experiment's cap on stored reports when it sets one."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tuner.dbmanager import serve
from tuner.executors import Executor, executor_classes
from tuner.metrics import (
    DBMANAGER_ADDRESS_ENV,
    METRICS_FILE_ENV,
    TRIAL_NAME_ENV,
    CapState,
    CollectorConfig,
    MetricPoint,
    MetricsCollector,
    ObservationCap,
    OutputReader,
    Rungs,
    collector_class,
    summarize,
    trial_metrics_path,
)
from tuner.spec import Experiment
from tuner.store import MetricSummary, Observation, ObservationDrop, Store
from tuner.tls import DBMANAGER_TLS_ENV_NAMES, DBManagerTLS
from tuner.tokens import TRIAL_TOKEN_ENV, ReportPolicy, allows_tokenless, forget_key, load_key

TRIAL_ENV_NAMES = frozenset(
    {TRIAL_NAME_ENV, DBMANAGER_ADDRESS_ENV, METRICS_FILE_ENV, TRIAL_TOKEN_ENV}
    | set(DBMANAGER_TLS_ENV_NAMES)
)
"""Variables tuner sets in a trial's environment (they override the container's ``env``)."""


def collection_problem(
    experiment: Experiment, executor: type[Executor], reachable_dbmanager: bool = False
) -> str | None:
    """Why trials of ``experiment`` cannot deliver metrics through ``executor``, or None.
    ``reachable_dbmanager``: the trials report to a DBManager served on an address they can
    reach wherever they run (``tuner controller --dbmanager-address``). Raises
    ``UnknownCollectorError`` for a kind without a collector."""
    kind = experiment.spec.metrics_collector_spec.collector.kind
    cls = collector_class(kind)
    why = cls.needs_shared_host
    if why is None or executor.shares_host:
        return None
    if reachable_dbmanager and cls.pushes_to_dbmanager:
        return None
    offered = " or ".join(cls.name for cls in executor_classes(lambda cls: cls.shares_host))
    return (
        f"metricsCollectorSpec.collector.kind: {kind.value!r} {why}, which only the"
        f" {offered or 'no'} executor offers; with the {executor.name} executor use StdOut"
    )


@dataclass(frozen=True)
class MetricsFile:
    """A trial's metrics file; ``remapped``: moved into the trial's directory, which the
    executor creates, rather than where the spec says (see ``trial_metrics_path``)."""

    path: Path
    remapped: bool


def report_policy(store: Store, executor: Executor, experiment: Experiment) -> ReportPolicy:
    """Who may report to the run's DBManager: each trial for itself, with the token derived
    from a key kept beside `address_file` (so that a restarted controller knows the tokens
    of the trials it adopts); tokenless reports as the experiment allows."""
    name = experiment.metadata.name
    path = address_file(store.url, executor, name)
    return ReportPolicy(
        key=load_key(None if path is None else path.with_suffix(".key")),
        experiment=name,
        allow_tokenless=allows_tokenless(experiment.metadata.annotations),
    )


@contextlib.contextmanager
def serve_dbmanager(
    store: Store,
    executor: Executor,
    experiment_name: str,
    policy: ReportPolicy | None = None,
    tls: DBManagerTLS | None = None,
) -> Iterator[str]:
    """An in-process DBManager for the trials of one run (over ``tls`` if given: checked
    at start with the files its trials get). Its port (and token key) is kept in
    `address_file` until the run ends with no trial left running (finished, or interrupted
    and drained)."""
    path = address_file(store.url, executor, experiment_name)
    served = serve(
        store,
        address_file=path,
        policy=policy,
        credentials=None if tls is None else tls.server_credentials(),
        client_credentials=None if tls is None else tls.client_credentials(),
    )
    with served as address:
        try:
            yield address
        except KeyboardInterrupt:
            _forget(path)
            raise
        _forget(path)


def _forget(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()
        forget_key(path.with_suffix(".key"))


def address_file(store_url: str, executor: Executor, experiment_name: str) -> Path | None:
    """Where the DBManager's address is kept between runs of an experiment, so that a
    controller restarted after a crash serves on the port its adopted trials know: a file in
    this user's temporary directory named by a hash of store, run directory and experiment
    (local trials do not outlive a reboot, nor need it longer). None for executors without
    a run directory."""
    run_dir = executor.run_dir
    if run_dir is None:
        return None
    key = "\0".join((str(os.getuid()), store_url, str(run_dir), experiment_name))
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / f"tuner-dbmanager-{digest}.address"


def metrics_file(
    experiment: Experiment, trial_name: str, run_dir: Path | None
) -> MetricsFile | None:
    """The trial's metrics file when the collector reads one (File), else None: remapped
    into ``<run_dir>/<trial>/`` unless the spec's path names the trial."""
    spec = experiment.spec.metrics_collector_spec
    if not collector_class(spec.collector.kind).reads_metrics_file:
        return None
    assert spec.source is not None and spec.source.file_system_path is not None  # defaulted
    trial_dir = None if run_dir is None else Path(run_dir) / trial_name
    path, remapped = trial_metrics_path(
        spec.source.file_system_path.path,
        trial_name,
        experiment.metadata.namespace,
        trial_dir,
    )
    return MetricsFile(path, remapped)


def trial_command(
    experiment: Experiment,
    argv: Sequence[str],
    env: Mapping[str, str],
    trial_name: str,
    db_manager_address: str | None,
    metrics_path: Path | None,
    report_token: str | None = None,
    tls: DBManagerTLS | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The argv and env a trial runs with: tuner's variables added, and the spec's metrics
    file path replaced by the trial's own wherever argv or env values mention it."""
    out_argv, out_env = list(argv), dict(env)
    if metrics_path is not None:
        spec = experiment.spec.metrics_collector_spec
        assert spec.source is not None and spec.source.file_system_path is not None
        written = spec.source.file_system_path.path
        if written != str(metrics_path):
            out_argv = [a.replace(written, str(metrics_path)) for a in out_argv]
            out_env = {k: v.replace(written, str(metrics_path)) for k, v in out_env.items()}
        out_env[METRICS_FILE_ENV] = str(metrics_path)
    out_env[TRIAL_NAME_ENV] = trial_name
    if db_manager_address:
        out_env[DBMANAGER_ADDRESS_ENV] = db_manager_address
        if report_token:
            out_env[TRIAL_TOKEN_ENV] = report_token
        if tls is not None:
            out_env.update(tls.trial_environment())
    return out_argv, out_env


def stored_summary(
    observations: Iterable[Observation], metric_names: Iterable[str]
) -> dict[str, MetricSummary]:
    """min / max / latest of each of ``metric_names`` over a trial's stored observations,
    given in the store's order (timestamp, then arrival): latest is the newest, as Katib's
    trial controller reads it from its DBManager."""
    wanted = frozenset(metric_names)
    points = [
        MetricPoint(o.metric_name, o.value)
        for o in observations
        if o.metric_name in wanted and math.isfinite(o.value)
    ]
    return {name: MetricSummary(s.min, s.max, s.latest) for name, s in summarize(points).items()}


EARLY_STOPPING_READS: dict[str, dict[str, int | None]] = {
    # algorithm: (its settings and their defaults, as the suggestion server's
    # EarlyStoppingAlgorithm.settings_spec has them; a test keeps the two equal)
    "medianstop": {"start_step": 4},
    "asha": {"min_resource": 1, "reduction_factor": 4, "max_resource": None},
}
"""The early-stopping algorithms whose reads of a running trial's log the cap keeps exact:
medianstop the first ``start_step`` reports, asha the first report at each rung."""


def observation_cap(experiment: Experiment) -> ObservationCap | None:
    """The experiment's cap on stored reports per metric (the annotation
    ``tuner.kubeflow.org/max-observations-per-metric``), with what its early stopping
    reads always kept; None when it sets none. For an early-stopping algorithm not in
    `EARLY_STOPPING_READS` its objective metrics are kept whole."""
    limit = experiment.max_observations_per_metric
    if limit is None:
        return None
    early = experiment.spec.early_stopping
    if early is None:
        return ObservationCap(limit)
    defaults = EARLY_STOPPING_READS.get(early.algorithm_name)
    if defaults is None:
        return ObservationCap(limit, exempt=frozenset(experiment.spec.objective.metric_names))
    given = {s.name: s.value for s in early.algorithm_settings}
    settings = {name: _int_setting(given.get(name), default) for name, default in defaults.items()}
    rungs = None
    first, factor = settings.get("min_resource"), settings.get("reduction_factor")
    if first is not None and factor is not None:
        rungs = Rungs(first, factor, settings.get("max_resource"))
    return ObservationCap(limit, head=settings.get("start_step") or 0, rungs=rungs)


def _int_setting(value: str | None, default: int | None) -> int | None:
    # The suggestion service validated the settings before the run started.
    try:
        return default if value is None or not value.strip() else int(value)
    except ValueError:
        return default


def collector_config(
    experiment: Experiment,
    log_path: Path | None,
    file_path: Path | None = None,
    open_output: Callable[[int], OutputReader] | None = None,
) -> CollectorConfig:
    """The collector settings of one trial: its output (``open_output`` from a byte
    position, else the file ``log_path``) and its metrics file (``file_path``)."""
    spec = experiment.spec
    source = spec.metrics_collector_spec.source
    filters = source.filter.metrics_format if source and source.filter else []
    file_system = source.file_system_path if source else None
    return CollectorConfig(
        metric_names=spec.objective.metric_names,
        filters=filters,
        log_path=log_path,
        file_path=file_path,
        file_format=file_system.format.value if file_system and file_system.format else "TEXT",
        open_output=open_output,
    )


CAP_CHECKPOINT_KEY = "cap"
"""Where the cap stands (`CapState`), in the collector checkpoint stored with each batch."""


COLLECT_BATCH_BYTES = 256 * 1024
"""Output parsed per stored batch: the points of one batch (a few tens of thousands for short
lines) are all the controller holds of a trial's metrics at any time."""


def collect_into_store(
    store: Store,
    trial_name: str,
    collector: MetricsCollector,
    *,
    final: bool,
    max_bytes: int | None,
    batch_bytes: int = COLLECT_BATCH_BYTES,
    cap: ObservationCap | None = None,
) -> int:
    """Read the trial's new output, up to ``max_bytes`` (None, or ``final``: all of it), in
    batches of ``batch_bytes``; store each batch's points together with the collector's
    checkpoint in one transaction, so that a controller killed at any instant resumes
    after the last stored batch and stores no observation twice. Returns the points stored.

    ``cap``: the experiment's cap on stored reports (`observation_cap`): each batch is
    thinned before it is stored, and the points it replaces deleted in its transaction;
    where the cap stands is kept in the checkpoint, so a resumed controller keeps the same.

    With ``final`` (the trial has ended) the last line without newline is parsed too. A
    batch without points stores its checkpoint only when it moved a whole batch on (a
    trial writing much else than metrics is then not re-read from the start).
    """
    stored = 0
    spent = 0
    last = collector.checkpoint.position
    thinning = None
    if cap is not None and collector.reads_output:
        saved = store.collector_checkpoint(trial_name) or {}
        thinning = CapState(cap, saved.get(CAP_CHECKPOINT_KEY))
    while final or max_bytes is None or spent < max_bytes:
        before = collector.bytes_read
        budget = batch_bytes if final or max_bytes is None else min(batch_bytes, max_bytes - spent)
        points = collector.collect(max_bytes=budget)
        read = collector.bytes_read - before
        if spent and read:
            # Inside the poll's transaction (`Store.transaction`): a log of several batches
            # is stored in steps (each batch still with its checkpoint), not all at once.
            store.commit_so_far(f"storing observations of trial {trial_name!r}")
        spent += read
        last, added = _store_batch(
            store, trial_name, collector, points, last, batch_bytes, thinning
        )
        stored += added
        if read == 0:
            break
    if final:
        points = collector.collect(final=True)
        stored += _store_batch(store, trial_name, collector, points, last, 0, thinning)[1]
    return stored


def _store_batch(
    store: Store,
    trial_name: str,
    collector: MetricsCollector,
    points: list[MetricPoint],
    last_position: int,
    min_advance: int,
    thinning: CapState | None,
) -> tuple[int, int]:
    """Store one batch; (the checkpoint's position, the points stored)."""
    checkpoint = collector.checkpoint
    advanced = checkpoint.position - last_position
    if not points and (advanced <= 0 or advanced < min_advance):
        return last_position, 0
    now = datetime.now(timezone.utc)
    saved = checkpoint.to_dict() if collector.reads_output else None
    drops: list[ObservationDrop] = []
    if thinning is not None and saved is not None:
        points, dropped = thinning.admit(points, now)
        drops = [ObservationDrop(d.metric, d.steps, d.stride, d.keep) for d in dropped]
        saved[CAP_CHECKPOINT_KEY] = thinning.to_json()
    store.add_observations(
        trial_name,
        [Observation(trial_name, p.name, p.value, p.step, p.timestamp or now) for p in points],
        checkpoint=saved,
        drops=drops,
    )
    return checkpoint.position, len(points)
