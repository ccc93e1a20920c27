"""What the command line costs before its work begins and after it ends: `tuner --help` and
each command's help load no model, database, RPC or numeric library; the packages whose
exports load lazily (`tuner.spec`, `tuner.executors`) still give every exported name; a run
without a progress bar loads none; the garbage collector waits for a run's start-up, and
only the process's own command line leaves objects frozen (`gc.freeze`) for the exit."""

from __future__ import annotations

import contextlib
import gc
import io
import subprocess
import sys
from pathlib import Path

import pytest
import support
import yaml

import tuner.executors
import tuner.spec
from tuner.cli import _process, main

HEAVY = ("pydantic", "sqlalchemy", "alembic", "grpc", "numpy", "yaml", "rich", "kubernetes")
TIMEOUT = 120  # guards against hangs only


def loaded_after(code: str) -> set[str]:
    """The top-level packages of HEAVY that `code` has imported, run in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(set({HEAVY!r}) & set(sys.modules))))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["run", "--help"], ["validate", "--help"], ["get", "trials", "--help"]],
    ids=" ".join,
)
def test_help_loads_no_heavy_library(argv: list[str]) -> None:
    code = (
        "import contextlib, io\n"
        "from tuner.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({argv!r})"
    )

    assert loaded_after(code) == set()


def test_naming_a_spec_constant_builds_no_model() -> None:
    assert loaded_after("from tuner.spec import MAX_OBSERVATIONS_ANNOTATION") == set()


def test_the_executor_contract_loads_no_executor() -> None:
    code = (
        "import sys, tuner.executors\n"
        "assert not any(m.startswith('tuner.executors._local') for m in sys.modules)\n"
        "assert 'tuner.executors._kubernetes_jobs' not in sys.modules"
    )

    assert loaded_after(code) == set()


@pytest.mark.parametrize("package", [tuner.spec, tuner.executors], ids=lambda p: p.__name__)
def test_every_exported_name_resolves_and_is_listed(package: object) -> None:
    exported = package.__all__  # type: ignore[attr-defined]

    for name in exported:
        assert getattr(package, name) is not None, name
    assert set(exported) <= set(dir(package))


def test_the_lazy_exports_are_the_defining_modules_objects() -> None:
    from tuner.executors._kubernetes_jobs import render_job_manifests
    from tuner.executors._local import LocalExecutor
    from tuner.spec._experiment import Experiment
    from tuner.spec._rules import max_observations

    assert tuner.executors.LocalExecutor is LocalExecutor
    assert tuner.executors.render_job_manifests is render_job_manifests
    assert tuner.spec.Experiment is Experiment
    annotations = {tuner.spec.MAX_OBSERVATIONS_ANNOTATION: "7"}
    assert max_observations(annotations) == 7


def echo_experiment(path: Path) -> Path:
    """A one-trial Experiment whose trial is `/bin/echo loss=1`."""
    document = support.experiment_document(
        "startup",
        command=["/bin/echo", "loss=1", "x=${trialParameters.x}"],
        parameters=[support.double_parameter("x", 0, 1)],
        parallel=1,
        max_trials=1,
        image="none",
    )
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_a_run_without_a_progress_bar_loads_no_bar(tmp_path: Path) -> None:
    file = echo_experiment(tmp_path / "experiment.yaml")
    argv = ["run", str(file), "--db", f"sqlite:///{tmp_path / 'tuner.db'}", "--no-progress"]
    argv += ["--run-dir", str(tmp_path / "runs")]
    code = (
        "import contextlib, io, sys\n"
        "from tuner.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    code = main({argv!r})\n"
        "assert code == 0 and 'best trial: startup-' in out.getvalue(), out.getvalue()\n"
        "print('table', 'rich.table' in sys.modules, 'bar', 'rich.progress' in sys.modules)"
    )

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "table True bar False"


def test_an_enabled_view_draws_its_bar_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    from tuner._progress import View

    view = View(enabled=True)
    with view.running("startup-bar", 3):
        pass

    assert "startup-bar" in capsys.readouterr().err


def test_collection_paused_turns_the_collector_back_on_once() -> None:
    assert gc.isenabled()

    with _process.collection_paused() as start_up_over:
        assert not gc.isenabled()
        start_up_over()
        assert gc.isenabled()
        gc.disable()  # the block's own business from here: not undone at its end
    disabled_inside = not gc.isenabled()
    gc.enable()

    assert disabled_inside


def test_collection_paused_leaves_a_collector_that_was_off_off() -> None:
    gc.disable()
    try:
        with _process.collection_paused() as start_up_over:
            start_up_over()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_run_inside_a_process_leaves_the_collector_on_and_freezes_nothing(
    tmp_path: Path,
) -> None:
    frozen = gc.get_freeze_count()
    file = echo_experiment(tmp_path / "experiment.yaml")
    argv = ["run", str(file), "--db", f"sqlite:///{tmp_path / 'tuner.db'}"]

    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main([*argv, "--run-dir", str(tmp_path / "runs"), "--no-progress"])

    assert code == 0, out.getvalue()
    assert "best trial: startup-" in out.getvalue()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_the_process_own_command_leaves_its_heap_frozen_for_the_exit(tmp_path: Path) -> None:
    file = echo_experiment(tmp_path / "experiment.yaml")
    db = f"sqlite:///{tmp_path / 'tuner.db'}"
    code = (
        "import gc, sys\n"
        "from tuner.cli import main\n"
        f"sys.argv = ['tuner', 'run', {str(file)!r}, '--db', {db!r}, '--no-progress',\n"
        f"            '--run-dir', {str(tmp_path / 'runs')!r}]\n"
        "code = main()\n"
        "print('exit', code, 'enabled', gc.isenabled(), 'frozen', gc.get_freeze_count() > 0)"
    )

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "exit 0 enabled True frozen True"
