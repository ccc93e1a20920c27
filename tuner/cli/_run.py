"""`tuner run FILE`: run (or resume) the Experiments of a file to their end, or with
`--dry-run` show the trials a run would start with.

Defaults make a first run work anywhere: a SQLite file in the current directory, the
suggestion server in-process on a loopback ephemeral port, the local executor.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.cli import _process
from tuner.cli._common import DEFAULT_DB_URL, db_url
from tuner.executors import DEFAULT_EXECUTOR, DEFAULT_RUN_DIR, executor_names
from tuner.redact import mask_urls
from tuner.spec import MAX_OBSERVATIONS_ANNOTATION
from tuner.tls import (
    TLSError,
    add_client_options,
    add_dbmanager_options,
    channel_credentials,
    dbmanager_tls,
)

if TYPE_CHECKING:
    from tuner._session import RunView
    from tuner.controller import RunResult, Snapshot
    from tuner.spec import Experiment

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run",
        help="run or resume the Experiments of a YAML file",
        description="Run the Katib v1beta1 Experiment(s) of FILE to their end, or resume them "
        "from the database. Exit code: 0 all succeeded, 1 one failed (or could not go on), "
        "2 invalid input (nothing was written to the database). With --dry-run: print the "
        "first parallelTrialCount trials of each Experiment as the executor would run them "
        "(kubernetes: the trial objects, Jobs or any kind) and exit 0, touching neither "
        "database nor cluster.",
    )
    parser.add_argument(
        "file", metavar="FILE", help="Experiment YAML (several documents run in turn)"
    )
    parser.add_argument(
        "--db",
        type=db_url,
        default=DEFAULT_DB_URL,
        help="database URL (default sqlite:///tuner.db in the current directory)",
    )
    parser.add_argument(
        "--suggestion-address",
        metavar="HOST:PORT",
        help="a running suggestion service (default: start one in-process on 127.0.0.1:0)",
    )
    parser.add_argument(
        "--suggestion-multi-experiment",
        action="store_true",
        help="--suggestion-address serves many experiments (tuner suggestion-server does). "
        "Without it the address is taken for a Katib suggestion image, which holds one "
        "experiment's state per process, and a FILE with several Experiments is refused",
    )
    add_executor_options(parser)
    add_client_options(parser, "--suggestion-tls", "the suggestion service (--suggestion-address)")
    add_dbmanager_options(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the trials a new run would start with (the first parallelTrialCount "
        "suggested; kubernetes: their trial objects, local: argv, env and working directory) "
        "as YAML documents, without opening the database or contacting a cluster",
    )
    parser.add_argument("--output", metavar="PATH", help="write the result as JSON to PATH")
    parser.add_argument(
        "--run-dir",
        default=DEFAULT_RUN_DIR,
        metavar="DIR",
        help="per-trial logs and process records of the local executor (default ./runs)",
    )
    parser.add_argument(
        "--poll-interval",
        type=_positive_float,
        default=0.5,
        metavar="S",
        help="seconds between two passes of the reconcile loop (default 0.5)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--max-observations-per-metric",
        type=_positive_int,
        metavar="N",
        help="store about N evenly spread reports per metric of each trial, plus the ones "
        "decisions read (latest, min, max, early-stopping steps); sets the annotation "
        f"{MAX_OBSERVATIONS_ANNOTATION} of every Experiment of FILE (default: the "
        "annotation, else every report is stored)",
    )
    parser.set_defaults(handler=run)


def add_executor_options(parser: argparse.ArgumentParser, executor_help: str = "") -> None:
    """``--executor`` and the executors' own flags; :func:`executor_options` reads them."""
    parser.add_argument(
        "--executor",
        default=DEFAULT_EXECUTOR,
        help=executor_help
        or f"where trials run: {' or '.join(executor_names())} (default {DEFAULT_EXECUTOR})",
    )
    # An executor's own flag sets the constructor option of the same name (its dest), which
    # the executor lists in its `cli_options`.
    group = parser.add_argument_group(
        "kubernetes executor",
        "Without these: the service account's in-cluster configuration inside a pod, else "
        "the kubeconfig in KUBECONFIG or ~/.kube/config with its current context.",
    )
    group.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file to use")
    group.add_argument("--context", metavar="NAME", help="kubeconfig context to use")
    local = parser.add_argument_group("local executor")
    local.add_argument(
        "--gpus",
        metavar="IDS",
        help="the GPU devices trials share out, like 0,1 (default: the controller's "
        "CUDA_VISIBLE_DEVICES or ROCR_VISIBLE_DEVICES, else what nvidia-smi -L lists); a "
        "trial whose primary container limits nvidia.com/gpu or amd.com/gpu gets its own",
    )


_EXECUTOR_FLAGS = ("kubeconfig", "context", "gpus")


def executor_options(args: argparse.Namespace) -> dict[str, Any]:
    """The executor's own options that :func:`add_executor_options` parsed (for
    ``ExecutorOptions.extra``). Raises ``UnknownExecutorError`` for an unknown
    ``--executor`` and ``ValueError`` naming a flag that configures another executor."""
    from tuner.executors import executor_classes, get_executor_class

    cls = get_executor_class(args.executor)
    given = {name: getattr(args, name) for name in _EXECUTOR_FLAGS}
    given = {name: value for name, value in given.items() if value is not None}
    for name in given:
        if name not in cls.cli_options:
            owners = [c.name for c in executor_classes() if name in c.cli_options]
            raise ValueError(
                f"--{name} configures the {' or '.join(owners)} executor; add --executor"
                f" {owners[0] if owners else '...'} (the executor is {args.executor!r})"
            )
    return given


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def with_max_observations(experiment: Experiment, limit: int | None) -> Experiment:
    """``experiment`` with its cap annotation set to ``limit`` (unchanged for None)."""
    if limit is None:
        return experiment
    annotations = {**experiment.metadata.annotations, MAX_OBSERVATIONS_ANNOTATION: str(limit)}
    metadata = experiment.metadata.model_copy(update={"annotations": annotations})
    return experiment.model_copy(update={"metadata": metadata})


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def run(args: argparse.Namespace) -> int:
    # The garbage collector waits until the first experiment starts (see _process).
    with _process.collection_paused() as start_up_over:
        return _run(args, start_up_over)


def _run(args: argparse.Namespace, start_up_over: Callable[[], None]) -> int:
    # Imported here so that `tuner validate` stays light.
    from tuner.controller import ControllerError, ExperimentRefusedError
    from tuner.executors import ExecutorError, UnknownExecutorError
    from tuner.store import Store, StoreError

    path = args.file
    experiments = _load(path)
    if experiments is None:
        return EXIT_INVALID
    experiments = [with_max_observations(e, args.max_observations_per_metric) for e in experiments]
    if args.suggestion_address and len(experiments) > 1 and not args.suggestion_multi_experiment:
        names = ", ".join(repr(e.metadata.name) for e in experiments)
        print(
            f"{path}: experiments {names} would all be sent to the suggestion service at"
            f" {args.suggestion_address}, which is taken for a single-experiment service (a"
            " Katib suggestion image keeps the first experiment's state for the life of its"
            " process, so the next would get wrong suggestions); run each with a suggestion"
            " service of its own, or pass --suggestion-multi-experiment if the service"
            " serves many (tuner suggestion-server does)",
            file=sys.stderr,
        )
        return EXIT_INVALID
    try:
        options = executor_options(args)
    except UnknownExecutorError as e:
        print(f"error: --{e}", file=sys.stderr)
        return EXIT_INVALID
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INVALID
    try:
        args.suggestion_credentials = suggestion_credentials(args)
        args.dbmanager_tls = dbmanager_tls(args)
    except TLSError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INVALID
    if args.dry_run:
        return _dry_run(args, path, experiments)
    created = _new_sqlite_file(args.db)
    try:
        store = Store.open(args.db)
    except StoreError as e:
        print(mask_urls(f"error: {e}"), file=sys.stderr)
        return EXIT_FAILED
    try:
        return _run_all(args, path, experiments, store, options, start_up_over)
    except ExperimentRefusedError as e:
        print(f"{path}: {e}", file=sys.stderr)
        # Refused before anything was stored: a database this run created goes too.
        store.close()
        _remove_sqlite_file(created)
        return EXIT_INVALID
    except (ControllerError, ExecutorError, StoreError) as e:
        print(mask_urls(f"error: {e}"), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(
            "interrupted: running trials were killed; rerun the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        store.close()


def suggestion_credentials(args: argparse.Namespace) -> Any:
    """TLS to ``--suggestion-address`` from the ``--suggestion-tls-*`` options, or None."""
    credentials = channel_credentials(
        args.suggestion_tls_ca,
        args.suggestion_tls_cert,
        args.suggestion_tls_key,
        prefix="--suggestion-tls",
    )
    if credentials is not None and not args.suggestion_address:
        raise TLSError(
            "--suggestion-tls-* configure TLS to a suggestion service given with"
            " --suggestion-address (the in-process one is on loopback)"
        )
    return credentials


def _new_sqlite_file(url: str) -> Path | None:
    """The SQLite file ``url`` names when it does not exist yet (``Store.open`` will create
    it), else None."""
    from tuner.cli._inspect_common import sqlite_file

    file = sqlite_file(url)
    return file if file is not None and not file.exists() else None


def _remove_sqlite_file(file: Path | None) -> None:
    if file is None:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            Path(f"{file}{suffix}").unlink()


def _load(path: str) -> list[Experiment] | None:
    from tuner.spec import SpecError, load_file

    try:
        experiments = load_file(path)
    except SpecError as e:
        for issue in e.issues:
            print(f"{path}: {issue}", file=sys.stderr)
        return None
    except OSError as e:
        print(f"{path}: cannot read: {e.strerror or e}", file=sys.stderr)
        return None
    if not experiments:
        print(f"{path}: no Experiment document in the file", file=sys.stderr)
        return None
    names = [e.metadata.name for e in experiments]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        print(
            f"{path}: metadata.name {', '.join(map(repr, repeated))} appears in more than one "
            "document; each Experiment needs its own name",
            file=sys.stderr,
        )
        return None
    return experiments


def _dry_run(args: argparse.Namespace, path: str, experiments: list[Experiment]) -> int:
    import yaml

    from tuner import _session
    from tuner.controller import ControllerError, ExperimentRefusedError

    try:
        documents = _session.dry_run(
            experiments,
            executor=args.executor,
            suggestion_address=args.suggestion_address,
            run_dir=args.run_dir,
            working_dir=Path(path).resolve().parent,
            suggestion_credentials=args.suggestion_credentials,
        )
    except ExperimentRefusedError as e:
        print(f"{path}: {e}", file=sys.stderr)
        return EXIT_INVALID
    except ControllerError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    yaml.safe_dump_all(documents, sys.stdout, sort_keys=False)
    return EXIT_OK


def _run_all(
    args: argparse.Namespace,
    path: str,
    experiments: list[Experiment],
    store: Any,
    executor_options: dict[str, Any],
    start_up_over: Callable[[], None],
) -> int:
    from tuner import _progress, _session

    view = _progress.View(enabled=not args.no_progress and sys.stderr.isatty())
    results = _session.run_experiments(
        store,
        experiments,
        executor=args.executor,
        suggestion_address=args.suggestion_address,
        run_dir=args.run_dir,
        # Trials run in the Experiment file's directory unless the container sets workingDir
        # (a relative workingDir is taken from there too).
        working_dir=Path(path).resolve().parent,
        poll_interval=args.poll_interval,
        view=_StartUpEnds(view, start_up_over),
        sigterm_as_interrupt=True,
        executor_options=executor_options,
        suggestion_credentials=args.suggestion_credentials,
        dbmanager_tls=args.dbmanager_tls,
    )
    if args.output:
        documents = [r.to_json() for r in results]
        _write_json(args.output, documents[0] if len(documents) == 1 else documents)
    return EXIT_OK if all(r.succeeded for r in results) else EXIT_FAILED


class _StartUpEnds:
    """A run's view that calls ``start_up_over`` when the first experiment starts running
    (everything is imported, connected and checked by then)."""

    def __init__(self, view: RunView, start_up_over: Callable[[], None]) -> None:
        self._view = view
        self._start_up_over = start_up_over

    def running(self, name: str, total: int | None) -> contextlib.AbstractContextManager[None]:
        self._start_up_over()
        return self._view.running(name, total)

    def update(self, snapshot: Snapshot) -> None:
        self._view.update(snapshot)

    def summary(self, result: RunResult) -> None:
        self._view.summary(result)


def _write_json(path: str, document: object) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2, allow_nan=False)
            f.write("\n")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
