"""The trial side of a function objective: rebuild the function (from its source, or
unpickle it), call it with the trial's typed parameters, and print what it returns as Katib
``name=value`` lines.

It is the command of the trial template that ``tuner.Experiment(objective_fn=...)``
generates, so it runs wherever the trial runs (a local process, a Kubernetes Job with
tuner's image)::

    python -m tuner.api._fn_runner --function NAME --metric OBJECTIVE [--push]
        --space JSON [--value NAME TEXT]... (--source TEXT | --pickled PATH --fingerprint FP)

``--source`` is the portable form (YAML, Kubernetes); ``--pickled`` names a cloudpickle file
written by ``Experiment.run()`` for trials on its own machine (closures, lambdas, captured
data), and ``--fingerprint`` identifies the function for resumes (the runner ignores it).
A metric the function already reported with ``tuner.report_metrics`` and returns with the
same value is not recorded a second time.

``--space`` is the experiment's ``spec.parameters`` as JSON; each ``--value`` is one
parameter's wire string (filled in from ``${trialParameters.NAME}``), parsed back to its
type with ``tuner.space``. The function's exceptions and ``sys.exit`` end this process as
they would end a script (traceback and exit code 1, or the code given), so only the trial
fails. Imports stay light (no gRPC, no SQLAlchemy): this runs once per trial.
"""

from __future__ import annotations

import json
import linecache
import math
import numbers
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from tuner.space import Assignment, Parameter, SearchSpace, SpaceError

EXIT_ERROR = 1  # what Python exits with on an uncaught exception
EXIT_USAGE = 2
MODULE = "tuner.api._fn_runner"


class _UsageError(Exception):
    """A malformed command line: a bug in whoever built it, not in the objective."""


class _BadReturnError(Exception):
    """The objective returned something that is not a number or a dict of numbers."""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        options = _parse_argv(list(sys.argv[1:] if argv is None else argv))
        params = _parameters(options["space"], options["values"])
    except (_UsageError, SpaceError) as e:
        print(f"{MODULE}: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if "pickled" in options:
            function = _unpickle(options["pickled"])
        else:
            function = _load(options["function"], options["source"])
        returned = function(params)
    except Exception as e:  # noqa: BLE001 - any error of the objective fails the trial
        # Printed here because Python's default hook reads source lines from files, and the
        # function's lines are only in linecache; the runner's own frame is left out.
        traceback.print_exception(type(e), e, e.__traceback__.tb_next if e.__traceback__ else None)
        return EXIT_ERROR
    try:
        metrics = _metrics(returned, options["function"], options["metric"])
    except _BadReturnError as e:
        print(f"{MODULE}: {e}", file=sys.stderr)
        return EXIT_ERROR
    metrics = _not_yet_reported(metrics)
    for name, value in metrics.items():
        print(f"{name}={value!r}")
    sys.stdout.flush()
    if options["push"] and metrics:
        from tuner import report_metrics

        report_metrics(metrics)
    return 0


def _parse_argv(argv: list[str]) -> dict[str, Any]:
    # Not argparse: values are arbitrary text (a categorical value may be "--x" or "-1").
    options: dict[str, Any] = {"push": False, "values": []}
    single = {
        "--function": "function",
        "--metric": "metric",
        "--space": "space",
        "--source": "source",
        "--pickled": "pickled",
        "--fingerprint": "fingerprint",
    }
    required = ("--function", "--metric", "--space")
    i = 0
    while i < len(argv):
        flag = argv[i]
        if flag == "--push":
            options["push"] = True
            i += 1
        elif flag in single and i + 1 < len(argv):
            options[single[flag]] = argv[i + 1]
            i += 2
        elif flag == "--value" and i + 2 < len(argv):
            options["values"].append((argv[i + 1], argv[i + 2]))
            i += 3
        else:
            raise _UsageError(f"unexpected argument {flag!r} at position {i}")
    missing = [f for f in required if single[f] not in options]
    if missing:
        raise _UsageError(f"missing {', '.join(missing)}")
    if ("source" in options) == ("pickled" in options):
        raise _UsageError("give exactly one of --source and --pickled")
    return options


def _parameters(space_json: str, values: list[tuple[str, str]]) -> Assignment:
    try:
        definitions = json.loads(space_json)
        space = SearchSpace(
            tuple(
                Parameter.from_wire(
                    d["name"],
                    d["parameterType"],
                    min=d.get("feasibleSpace", {}).get("min"),
                    max=d.get("feasibleSpace", {}).get("max"),
                    step=d.get("feasibleSpace", {}).get("step"),
                    values=d.get("feasibleSpace", {}).get("list", ()),
                    distribution=d.get("feasibleSpace", {}).get("distribution"),
                )
                for d in definitions
            )
        )
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise _UsageError(f"--space: not a list of Katib parameters: {e!r}") from e
    wire = dict(values)
    if len(wire) != len(values):
        raise _UsageError("--value: a parameter is given twice")
    return space.parse(wire)


def _load(name: str, source: str) -> Any:
    filename = f"<objective {name}>"
    # Registered so that tracebacks through the function show its lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": "__tuner_objective__"}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - the experiment's own code
    return namespace[name]


def _unpickle(path: str) -> Any:
    import pickle

    try:
        with open(path, "rb") as f:
            return pickle.load(f)  # noqa: S301 - written by this experiment's own run()
    except OSError as e:
        raise _UsageError(
            f"--pickled: cannot read the objective function from {path}: {e}; it is written by"
            " Experiment.run() on this machine, so only trials it starts can read it"
        ) from e


def _not_yet_reported(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` without those the function already reported with the same value, so a
    function that reports its final value and also returns it is stored once."""
    if "tuner._report" not in sys.modules:
        return metrics  # the function never reported
    from tuner._report import last_reported

    reported = last_reported()
    return {k: v for k, v in metrics.items() if reported.get(k) != v}


def _metrics(returned: Any, function: str, objective: str) -> dict[str, float]:
    if returned is None:
        print(
            f"{MODULE}: {function} returned None, so no metric was printed; return the "
            f"objective {objective!r} (a number or a dict of metrics) unless it was reported "
            "with tuner.report_metrics()",
            file=sys.stderr,
        )
        return {}
    if _is_number(returned):
        returned = {objective: returned}
    if not isinstance(returned, dict):
        raise _BadReturnError(
            f"{function} returned {type(returned).__name__} {returned!r:.80}; return a number "
            f"(the objective {objective!r}) or a dict of metric name -> number"
        )
    metrics: dict[str, float] = {}
    for name, value in returned.items():
        if not isinstance(name, str) or not _is_number(value):
            raise _BadReturnError(
                f"{function} returned {{{name!r}: {value!r:.80}}}; metrics map names (str) to "
                "numbers"
            )
        if not math.isfinite(float(value)):
            print(f"{MODULE}: metric {name!r} is {value!r}; not reported", file=sys.stderr)
            continue
        metrics[name] = float(value)
    return metrics


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


if __name__ == "__main__":
    sys.exit(main())
