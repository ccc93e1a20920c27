"""`tuner submit FILE...` and `tuner controller`: service mode, where a long-running controller
(one or more replicas sharing a database) drives every experiment submitted to it."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING

from tuner.cli._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_db_option
from tuner.cli._run import add_executor_options, executor_options, suggestion_credentials
from tuner.tls import (
    DBManagerTLS,
    TLSError,
    add_client_options,
    add_dbmanager_options,
    dbmanager_tls,
)

if TYPE_CHECKING:
    from tuner.executors import Executor
    from tuner.spec import Experiment
    from tuner.store import Store

DEFAULT_METRICS_ADDRESS = "127.0.0.1:8080"


def register(sub: argparse._SubParsersAction) -> None:
    _register_submit(sub)
    _register_controller(sub)


def _register_submit(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "submit",
        help="store Experiments for a running 'tuner controller'",
        description="Check the Katib v1beta1 Experiment(s) of FILE... as 'tuner run' does and "
        "store them in state Created for 'tuner controller'. An experiment already stored "
        "with the same spec is left alone ('already submitted'); changed counts follow the "
        "resume rules of 'tuner run'. Exit code: 0 stored, 1 could not check or store, "
        "2 invalid input (every error is printed; nothing was written).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="Experiment YAML file(s)")
    add_db_option(parser)
    add_client_options(parser, "--suggestion-tls", "the suggestion service (--suggestion-address)")
    parser.add_argument(
        "--suggestion-address",
        metavar="HOST:PORT",
        help="suggestion service that checks the algorithm settings (default: one started "
        "in-process on 127.0.0.1:0)",
    )
    parser.add_argument(
        "--dbmanager-advertise-address",
        metavar="HOST:PORT",
        help="the controller serves its trials one DBManager at this address (its "
        "--dbmanager-advertise-address), so the Push collector is accepted with any executor",
    )
    add_executor_options(
        parser,
        "the executor the controller uses, whose checks apply (default local: the "
        "template needs a command; kubernetes: a batch/v1 Job, and its namespace is watched "
        "while checking)",
    )
    parser.set_defaults(handler=submit)


def _register_controller(sub: argparse._SubParsersAction) -> None:
    from tuner.executors import DEFAULT_RUN_DIR

    parser = sub.add_parser(
        "controller",
        help="drive every submitted experiment, continuously (service mode)",
        description="Run until SIGTERM: drive every unfinished experiment of the database "
        "that this replica can lease, picking up new submissions as they come. Several "
        "replicas may share one PostgreSQL or MySQL database; each experiment is driven by "
        "one at a time, and a dead replica's experiments are taken over when its leases "
        "expire. SIGTERM or Ctrl-C stops cleanly (trials keep running; leases are released "
        "for a peer or the next start to adopt them) and exits 0; a second one exits at once.",
    )
    add_db_option(parser)
    add_client_options(parser, "--suggestion-tls", "the suggestion service (--suggestion-address)")
    parser.add_argument(
        "--suggestion-address",
        metavar="HOST:PORT",
        help="a running suggestion service (default: start one in-process on 127.0.0.1:0)",
    )
    parser.add_argument(
        "--suggestion-multi-experiment",
        action="store_true",
        help="--suggestion-address serves many experiments at once (tuner suggestion-server "
        "does). Without it the address is taken for a Katib suggestion image, which holds one "
        "experiment's state per process: only the first experiment driven is sent to it, and "
        "every other is refused with an error naming both",
    )
    add_dbmanager_options(parser)
    group = parser.add_argument_group(
        "a DBManager for every experiment",
        "Serve one DBManager for the whole database on an address trials reach wherever they "
        "run (Kubernetes pods, Katib's SDK), instead of one per experiment on 127.0.0.1; Push "
        "is then allowed with every executor. Its reports carry no per-trial token, so "
        "TUNER_ALLOW_TOKENLESS_REPORTS=true must be set (docs/security.md).",
    )
    group.add_argument(
        "--dbmanager-address",
        metavar="HOST:PORT",
        help="where to serve it, e.g. 0.0.0.0:6789 in a pod",
    )
    group.add_argument(
        "--dbmanager-advertise-address",
        metavar="HOST:PORT",
        help="the address trials and early stopping dial (default --dbmanager-address; "
        "required when that binds every interface), e.g. tuner-dbmanager.tuner:6789",
    )
    add_executor_options(parser)
    parser.add_argument(
        "--run-dir",
        default=DEFAULT_RUN_DIR,
        metavar="DIR",
        help="per-trial directories of the local executor (default ./runs); replicas on one "
        "machine must share it to adopt each other's trials",
    )
    parser.add_argument(
        "--metrics-address",
        default=DEFAULT_METRICS_ADDRESS,
        metavar="HOST:PORT",
        help=f"where /metrics and /healthz are served (default {DEFAULT_METRICS_ADDRESS}; "
        "port 0 picks a free port, printed at start)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=_positive_float,
        default=30.0,
        metavar="N",
        help="lease time to live: a dead replica's experiments are taken over this long "
        "after its last renewal (default 30)",
    )
    parser.add_argument(
        "--poll-interval",
        type=_positive_float,
        default=1.0,
        metavar="S",
        help="longest pause between two looks for new experiments, and between two passes "
        "of each experiment's loop (default 1)",
    )
    parser.add_argument(
        "--max-concurrent-experiments",
        type=_positive_int,
        default=100,
        metavar="N",
        help="experiments this replica drives at once; the rest wait, unleased, for a "
        "replica with room (default 100)",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=8,
        metavar="N",
        help="experiment loop passes run at once (default 8): the driven experiments take "
        "turns on them, one pass each, oldest waiting first; /metrics shows the queue "
        "(tuner_queue_depth) and each experiment's lag",
    )
    parser.set_defaults(handler=controller)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is less than 1")
    return value


# -- submit ----------------------------------------------------------------------------


def submit(args: argparse.Namespace) -> int:
    from tuner._session import serve_suggestions
    from tuner.controller import ControllerError, ExperimentRefusedError, SuggestionClient
    from tuner.executors import DEFAULT_RUN_DIR, ExecutorError
    from tuner.service import apply, check, describe_problem
    from tuner.store import StoreError

    loaded = _load_all(args.files)
    if loaded is None:
        return EXIT_USAGE
    try:
        credentials = suggestion_credentials(args)
    except TLSError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    # The controller's DBManager for every experiment, if it serves one (Push is then allowed
    # with every executor).
    dbmanager = {"db_manager_address": args.dbmanager_advertise_address}
    opened = _open_executor_and_store(args, DEFAULT_RUN_DIR)
    if isinstance(opened, int):
        return opened
    executor, store = opened
    try:
        with (
            executor,
            serve_suggestions(args.suggestion_address) as address,
            SuggestionClient(address, credentials=credentials) as client,
        ):
            checked, problems = [], []
            for path, experiment in loaded:
                try:
                    checked.append(check(store, experiment, client, executor, **dbmanager))
                except ExperimentRefusedError as e:
                    problems.append(f"{path}: {describe_problem(experiment, e)}")
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                return EXIT_USAGE
            for item in checked:
                done = apply(store, item, client, executor, **dbmanager)
                print(f"experiment {done.name!r}: {done.message} ({done.status.value})")
    except ExperimentRefusedError as e:  # a concurrent submission stored another spec
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (ControllerError, ExecutorError, StoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close()
    return EXIT_OK


def _load_all(paths: list[str]) -> list[tuple[str, Experiment]] | None:
    """Every Experiment of every file, or None after printing every problem."""
    from tuner.spec import SpecError, load_file

    loaded: list[tuple[str, Experiment]] = []
    ok = True
    for path in paths:
        try:
            experiments = load_file(path)
        except SpecError as e:
            ok = False
            for issue in e.issues:
                print(f"{path}: {issue}", file=sys.stderr)
            continue
        loaded += [(path, experiment) for experiment in experiments]
    first: dict[str, str] = {}
    for path, experiment in loaded:
        name = experiment.metadata.name
        if name in first:
            ok = False
            print(
                f"{path}: metadata.name {name!r} is also used in {first[name]}; each "
                "Experiment needs its own name",
                file=sys.stderr,
            )
        first.setdefault(name, path)
    return loaded if ok else None


def _open_executor_and_store(
    args: argparse.Namespace, run_dir: str
) -> tuple[Executor, Store] | int:
    """The executor and the store the command asks for, or its exit code once it has said
    why it cannot have them."""
    from tuner.executors import (
        ExecutorError,
        ExecutorOptions,
        UnknownExecutorError,
        get_executor_class,
    )
    from tuner.store import Store, StoreError

    try:
        # Trials of a service have no Experiment file to run beside: relative commands and
        # workingDirs are taken from the controller's current directory.
        options = ExecutorOptions(run_dir, os.getcwd(), executor_options(args))
        executor = get_executor_class(args.executor).create(options)
    except UnknownExecutorError as e:
        print(f"error: --{e}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as e:  # a --kubeconfig without --executor kubernetes
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ExecutorError as e:
        print(f"error: executor {args.executor!r}: {e}", file=sys.stderr)
        return EXIT_FAILED
    try:
        store = Store.open(args.db)
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        executor.close()
        return EXIT_FAILED
    return executor, store


# -- controller ------------------------------------------------------------------------


def controller(args: argparse.Namespace) -> int:
    from tuner._session import serve_suggestions
    from tuner.dbmanager import DBManagerError
    from tuner.executors import ExecutorError
    from tuner.service import (
        AddressError,
        ControllerService,
        MetricsServer,
        ServiceMetrics,
        ServiceSettings,
        parse_address,
    )
    from tuner.store import StoreError

    try:
        parse_address(args.metrics_address)
    except AddressError as e:
        print(f"error: --metrics-address: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        credentials = suggestion_credentials(args)
        tls = dbmanager_tls(args)
    except TLSError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    problem = _shared_dbmanager_problem(args)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    opened = _open_executor_and_store(args, args.run_dir)
    if isinstance(opened, int):
        return opened
    executor, store = opened
    try:
        with (
            executor,
            serve_suggestions(args.suggestion_address, tls) as address,
            _shared_dbmanager(args, store, tls) as dbmanager,
        ):
            settings = ServiceSettings(
                suggestion_address=address,
                lease_seconds=args.lease_seconds,
                poll_interval=args.poll_interval,
                max_concurrent_experiments=args.max_concurrent_experiments,
                workers=args.workers,
                suggestion_credentials=credentials,
                dbmanager_tls=tls,
                db_manager_address=dbmanager,
                # tuner's own in-process server serves many experiments.
                suggestion_multi_experiment=(
                    not args.suggestion_address or args.suggestion_multi_experiment
                ),
            )
            metrics = ServiceMetrics()
            service = ControllerService(store, executor, settings, metrics=metrics)
            server = MetricsServer(args.metrics_address, metrics, service.health)
            server.start()
            try:
                print(
                    f"controller {service.owner} on {store.url}: executor {executor.name}, "
                    f"suggestion service {address}, "
                    + (f"DBManager {dbmanager}, " if dbmanager else "")
                    + f"metrics http://{server.address}/metrics, "
                    f"health http://{server.address}/healthz",
                    flush=True,
                )
                with _stop_on_signals(service.stop):
                    service.run()
            finally:
                server.close()
            print("controller stopped; its leases are released", flush=True)
    except AddressError as e:
        print(f"error: --metrics-address: {e}", file=sys.stderr)
        return EXIT_FAILED
    except (DBManagerError, ExecutorError, StoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close()
    return EXIT_OK


def _shared_dbmanager_problem(args: argparse.Namespace) -> str | None:
    """Why ``--dbmanager-address``/``--dbmanager-advertise-address`` cannot work, or None."""
    from tuner.dbmanager import WILDCARD_HOSTS
    from tuner.tokens import ALLOW_TOKENLESS_ENV, allows_tokenless

    if args.dbmanager_address is None:
        if args.dbmanager_advertise_address is not None:
            return "--dbmanager-advertise-address needs --dbmanager-address (where to serve it)"
        return None
    host, colon, port = args.dbmanager_address.rpartition(":")
    if not colon or not port.isdigit():
        return f"--dbmanager-address: {args.dbmanager_address!r} is not HOST:PORT"
    if host in WILDCARD_HOSTS and args.dbmanager_advertise_address is None:
        return (
            f"--dbmanager-address {args.dbmanager_address} binds every interface, which is no"
            " address a trial can dial: add --dbmanager-advertise-address HOST:PORT (e.g. the"
            " DBManager's Service, tuner-dbmanager.tuner:6789)"
        )
    if not allows_tokenless({}):
        return (
            "--dbmanager-address serves every experiment's trials, which get no per-trial"
            f" token: set {ALLOW_TOKENLESS_ENV}=true in the controller's environment to accept"
            " their reports (anyone who can reach the address can then report for any trial"
            " of the database: keep it behind a NetworkPolicy, or use --dbmanager-tls-ca)"
        )
    return None


@contextlib.contextmanager
def _shared_dbmanager(
    args: argparse.Namespace, store: Store, tls: DBManagerTLS | None
) -> Iterator[str | None]:
    """The address trials are given for the DBManager ``--dbmanager-address`` serves while
    the block runs, or None without that option (a DBManager per experiment)."""
    if args.dbmanager_address is None:
        yield None
        return
    import secrets

    from tuner.dbmanager import serve
    from tuner.tokens import ReportPolicy

    # Tokenless reports for any trial of the store (checked by _shared_dbmanager_problem).
    policy = ReportPolicy(key=secrets.token_bytes(32), experiment=None, allow_tokenless=True)
    with serve(
        store,
        args.dbmanager_address,
        policy=policy,
        credentials=None if tls is None else tls.server_credentials(),
        client_credentials=None if tls is None else tls.client_credentials(),
        advertised=args.dbmanager_advertise_address,
    ) as bound:
        yield args.dbmanager_advertise_address or bound


@contextlib.contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call ``stop`` once; a second signal exits at once (exit code 130),
    which is as safe as a crash: the store is the source of truth."""
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if received:
            os._exit(130)
        received.append(signum)
        name = signal.Signals(signum).name
        # os.write, not print: print is not reentrant if the signal interrupted a print.
        os.write(2, f"{name}: stopping; trials keep running\n".encode())
        # Not stop() here: a handler runs between two bytecodes of the main thread, which
        # may hold the lock that stop()'s Event.set() takes.
        threading.Thread(target=stop, name="stop", daemon=True).start()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
