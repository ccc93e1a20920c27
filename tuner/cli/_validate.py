"""`tuner validate FILE...`: check Experiment files without running anything: the spec, that
tuner has a collector of each experiment's metrics collector kind (asked of the collectors'
registry, which the spec does not know), that a multi-objective experiment's algorithm
serves several objectives, and the algorithm and early-stopping settings, as `tuner run`
checks them with its in-process suggestion server."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuner.spec import Experiment


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "validate",
        help="check Experiment YAML files",
        description="Check Katib v1beta1 Experiment files: the spec, the metrics collector, and "
        "the algorithm and early-stopping names and settings as 'tuner run' checks them "
        "without --suggestion-address (tuner's own algorithms). Prints 'FILE: valid' or every "
        "error; exits 0 when all files are valid, 2 otherwise.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="Experiment YAML file(s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, as by every command: `tuner --help` loads none of them.
    from tuner.spec import SpecError, load_file

    status = 0
    for path in args.files:
        try:
            experiments = load_file(path)
        except SpecError as e:
            status = 2
            for issue in e.issues:
                print(f"{path}: {issue}")
            continue
        except OSError as e:
            status = 2
            print(f"{path}: cannot read: {e.strerror or e}")
            continue
        problems = _unsupported(experiments) or _algorithm_problems(experiments)
        for problem in problems:
            print(f"{path}: {problem}")
        if problems:
            status = 2
            continue
        print(f"{path}: valid")
    return status


def _unsupported(experiments: list[Experiment]) -> list[str]:
    from tuner.metrics import UnknownCollectorError, collector_class

    problems = []
    for experiment in experiments:
        try:
            collector_class(experiment.spec.metrics_collector_spec.collector.kind)
        except UnknownCollectorError as e:
            problems.append(f"spec.{e}")
        problems += _objectives_problems(experiment)
    return problems


def _objectives_problems(experiment: Experiment) -> list[str]:
    """Several objectives for an algorithm of tuner's suggestion server that serves one (as
    `tuner run` refuses them); an unknown algorithm is another check's to report."""
    count = len(experiment.spec.objective.objectives)
    if count < 2:
        return []
    from suggestion import algorithms

    try:
        algorithms.get(experiment.spec.algorithm.algorithm_name).check_objectives(
            count, algorithms.multi_objective_names()
        )
    except algorithms.UnknownAlgorithmError:
        return []
    except algorithms.ObjectivesNotSupportedError as e:
        return [f"spec.algorithm.algorithmName: {e}"]
    return []


def _algorithm_problems(experiments: list[Experiment]) -> list[str]:
    # Imported here: only files whose spec is valid pay for gRPC and the algorithms.
    from tuner._session import algorithm_problems

    return algorithm_problems(experiments)
