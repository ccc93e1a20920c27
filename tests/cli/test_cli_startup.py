"""What the command line loads before it needs it: `tuner --help` and each command's help
load no model, database, RPC or numeric library; the packages whose exports load
lazily (`tuner.spec`, `tuner.executors`) still give every exported name."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tuner.executors
import tuner.spec

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
