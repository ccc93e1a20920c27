"""One tuning step for any orchestrator: `tuner run --output` on an Experiment's text, its
result split into the values a pipeline hands on. Imports no kfp, so a bare image runs it.

As a command (what the container component runs): `python -m tuner.pipeline
--experiment-text TEXT --result PATH [--db URL] [--executor NAME] [--timeout-seconds N]
[--best-parameters PATH] [--best-parameters-json PATH] [--best-objective PATH]
[--experiment-name PATH]`; exit codes are those of `tuner run` (0, 1 failed, 2 invalid).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tuner.errors import TunerError
from tuner.executors import DEFAULT_EXECUTOR
from tuner.redact import mask_urls

# `tuner run` exit codes, see docs/controller.md.
EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_INVALID = 2

# How much of `tuner run`'s stderr an error message quotes when there is no result file.
_STDERR_TAIL_LINES = 10

# What of each trial's log the result document keeps (`trialLogs`): the last bytes of each,
# and at most this much in all (the most recent trials first).
_TRIAL_LOG_BYTES = 32 * 1024
_TRIAL_LOGS_TOTAL_BYTES = 4 * 1024 * 1024
# The local executor's per-trial log, `<run dir>/<trial>/output.log`.
_TRIAL_LOG_NAME = "output.log"

# After a timeout `tuner run` gets SIGTERM, on which it kills its trials and records them;
# SIGKILL follows if it has not exited after this grace period.
_GRACE_SECONDS = 30.0


class StepError(TunerError):
    """Base class of the errors of `tuner.pipeline`."""


class TuningFailedError(StepError):
    """The step has no best trial to hand on: the experiment failed, was refused or timed out.

    `exit_code` is the step's exit code (`tuner run`'s: 1 failed, 2 invalid input); `document`
    is the `tuner run --output` JSON when one was written.
    """

    def __init__(
        self, message: str, *, exit_code: int = EXIT_FAILED, document: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.document = document


@dataclass(frozen=True)
class TuningResult:
    """A succeeded experiment's best trial, plus the whole `tuner run --output` document."""

    experiment_name: str
    best_trial_name: str
    best_parameters: dict[str, Any]
    best_objective: float
    document: dict[str, Any]

    @property
    def best_parameters_json(self) -> str:
        """The best parameters as a JSON object; unlike a kfp `dict` output, ints stay ints."""
        return json.dumps(self.best_parameters, sort_keys=True)

    def summary(self) -> dict[str, Any]:
        """A few flat values for an artifact's metadata (shown by pipeline UIs)."""
        return {
            "experiment": self.experiment_name,
            "status": self.document.get("status"),
            "best_trial": self.best_trial_name,
            "best_objective": self.best_objective,
        }


def run_tuning(
    experiment: str,
    *,
    db_url: str = "",
    executor: str = DEFAULT_EXECUTOR,
    timeout_seconds: int = 0,
    output_path: str | os.PathLike[str] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
) -> TuningResult:
    """Run the Experiment in YAML (or JSON) text `experiment` with `tuner run`; its best trial.

    `db_url` empty: a SQLite file that is deleted when the step ends; `run_dir` None: trial
    directories in a temporary folder, deleted too. `output_path` receives the `tuner run
    --output` JSON, plus ``trialLogs``: each trial's name and the end of its log (stdout and
    stderr; URL passwords masked), so that the cause of a failure outlives the step.
    `timeout_seconds` > 0 bounds the whole run. `tuner run`'s output goes to this process's
    stdout and stderr. Raises `TuningFailedError`.
    """
    if timeout_seconds < 0:
        raise ValueError(f"timeout_seconds: {timeout_seconds} is negative; use 0 for no timeout")
    name = _experiment_name(experiment)
    with tempfile.TemporaryDirectory(prefix="tuner-step-") as scratch:
        work = Path(scratch)
        experiment_file = work / "experiment.yaml"
        experiment_file.write_text(experiment, encoding="utf-8")
        output = Path(output_path) if output_path is not None else work / "result.json"
        output.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable, "-m", "tuner.cli", "run", str(experiment_file),
            "--db", db_url or f"sqlite:///{work / 'tuner.db'}",
            "--executor", executor,
            "--output", str(output),
            "--run-dir", str(run_dir if run_dir is not None else work / "runs"),
            "--no-progress",
        ]  # fmt: skip
        code, errors = _run(argv, timeout_seconds, name)
        document = _read_document(output) if output.exists() else None
        if document is not None:
            document["trialLogs"] = _trial_logs(Path(run_dir) if run_dir else work / "runs")
            output.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return _outcome(name, code, document, errors)


def _trial_logs(run_dir: Path) -> list[dict[str, Any]]:
    """The end of each trial's log in ``run_dir``, oldest first, bounded (see above)."""
    logs = sorted(run_dir.glob(f"*/{_TRIAL_LOG_NAME}"), key=_modified)
    kept: list[dict[str, Any]] = []
    budget = _TRIAL_LOGS_TOTAL_BYTES
    for path in reversed(logs):
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - min(_TRIAL_LOG_BYTES, budget)))
                data = f.read()
        except OSError:
            continue
        budget -= len(data)
        text = mask_urls(data.decode("utf-8", errors="replace"))
        kept.append({"trial": path.parent.name, "log": text, "truncated": len(data) < size})
        if budget <= 0:
            break
    return kept[::-1]


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _experiment_name(text: str) -> str:
    # Parsed here too so a bad Experiment fails the step with every issue, before any work.
    from tuner.spec import SpecError, loads

    try:
        experiments = loads(text, source="experiment")
    except SpecError as e:
        raise TuningFailedError(str(e), exit_code=EXIT_INVALID) from e
    if len(experiments) != 1:
        raise TuningFailedError(
            f"experiment: {len(experiments)} Experiments in the text; a step runs exactly one",
            exit_code=EXIT_INVALID,
        )
    return experiments[0].metadata.name


def _run(argv: list[str], timeout_seconds: int, name: str) -> tuple[int, list[str]]:
    """Run `tuner run`; its exit code and the last lines of its stderr (also passed through)."""
    tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
    with subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, errors="replace") as process:
        assert process.stderr is not None
        echo = threading.Thread(target=_echo, args=(process.stderr, tail), daemon=True)
        echo.start()
        try:
            code: int | None = process.wait(timeout=timeout_seconds or None)
        except subprocess.TimeoutExpired:
            code = None
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        finally:
            # Bounded: a process that inherited the pipe could keep it open past the exit.
            echo.join(timeout=_GRACE_SECONDS)
    if code is None:
        raise TuningFailedError(
            f"experiment {name!r} did not finish within timeout_seconds={timeout_seconds};"
            " tuner run was interrupted"
        )
    return code, [line for line in tail if line.strip()]


def _echo(stream: IO[str], tail: deque[str]) -> None:
    try:
        for line in stream:
            sys.stderr.write(line)
            tail.append(line.rstrip("\n"))
    except (OSError, ValueError):  # the pipe was closed under us: nothing more to echo
        pass
    sys.stderr.flush()


def _read_document(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TuningFailedError(f"{path}: cannot read the tuner run result: {e}") from e
    if not isinstance(document, dict):
        raise TuningFailedError(f"{path}: the tuner run result is not a JSON object")
    return document


def _outcome(
    name: str, code: int, document: dict[str, Any] | None, errors: list[str]
) -> TuningResult:
    if document is None:
        said = "\n".join(errors) if errors else "(nothing on stderr)"
        raise TuningFailedError(
            f"experiment {name!r}: tuner run exited with code {code} without a result:\n{said}",
            exit_code=code or EXIT_FAILED,
        )
    status = document.get("status")
    if code != EXIT_SUCCEEDED or status != "Succeeded":
        raise TuningFailedError(
            f"experiment {name!r} {status or 'did not succeed'}: {_why(document)}",
            exit_code=code or EXIT_FAILED,
            document=document,
        )
    best = document.get("bestTrial")
    if not isinstance(best, dict):
        raise TuningFailedError(
            f"experiment {name!r} succeeded without a best trial ({_why(document)}):"
            " no trial reported the objective metric",
            document=document,
        )
    return TuningResult(
        experiment_name=str(document.get("name", name)),
        best_trial_name=str(best["name"]),
        best_parameters=dict(best["parameters"]),
        # float() also reads the "Infinity"/"NaN" strings that JSON needs for those values.
        best_objective=float(best["objectiveValue"]),
        document=document,
    )


def _why(document: dict[str, Any]) -> str:
    parts = [str(document[key]) for key in ("reason", "message") if document.get(key)]
    return ": ".join(parts) or "no reason recorded"


def _seconds(text: str) -> int:
    # KFP may render an integer input as "600.0" on the command line: take any whole number.
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0 or not value.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole, non-negative number")
    return int(value)


def main(argv: Sequence[str] | None = None) -> int:
    """The container step: run the experiment, write each output to its file; the exit code."""
    parser = argparse.ArgumentParser(prog="python -m tuner.pipeline", description=__doc__)
    parser.add_argument("--experiment-text", required=True, help="the Experiment as YAML text")
    parser.add_argument("--db", default="", help="database URL (empty: a temporary SQLite file)")
    parser.add_argument("--executor", default=DEFAULT_EXECUTOR)
    parser.add_argument("--timeout-seconds", type=_seconds, default=0, help="0: no timeout")
    parser.add_argument("--result", required=True, help="where the tuner run JSON goes")
    outputs = ("best_parameters", "best_parameters_json", "best_objective", "experiment_name")
    for output in outputs:
        parser.add_argument("--" + output.replace("_", "-"), metavar="PATH")
    args = parser.parse_args(argv)
    try:
        result = run_tuning(
            args.experiment_text,
            db_url=args.db,
            executor=args.executor,
            timeout_seconds=args.timeout_seconds,
            output_path=args.result,
        )
    except TuningFailedError as e:
        print(f"tuner.pipeline: {e}", file=sys.stderr)
        return e.exit_code
    values = {
        "best_parameters": result.best_parameters_json,
        "best_parameters_json": result.best_parameters_json,
        "best_objective": json.dumps(result.best_objective),
        "experiment_name": result.experiment_name,
    }
    for output in outputs:
        path = getattr(args, output)
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(values[output], encoding="utf-8")
    return EXIT_SUCCEEDED
