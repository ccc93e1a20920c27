"""The in-process wiring of a run (tuner._session): its suggestion server keeps Optuna's INFO
lines off the terminal without importing Optuna for algorithms that do not use it. Each
check runs in a fresh interpreter, where Optuna is not imported yet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import support
import yaml

TIMEOUT = 120  # guards against hangs only


def python(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd
    )
    assert done.returncode == 0, done.stderr
    return done


def test_the_server_imports_no_optuna_and_quiets_it_once_something_does() -> None:
    code = (
        "import sys\n"
        "from tuner import _session\n"
        "with _session.serve_suggestions(None):\n"
        "    imported = 'optuna' in sys.modules\n"
        "    import optuna\n"
        "print(imported, optuna.logging.get_verbosity() == optuna.logging.WARNING)"
    )

    assert python(code).stdout == "False True\n"


def test_optuna_imported_before_the_server_is_quieted_at_its_start() -> None:
    code = (
        "import optuna\n"
        "from optuna.logging import INFO, WARNING, get_verbosity\n"
        "from tuner import _session\n"
        "before = get_verbosity()\n"
        "with _session.serve_suggestions(None):\n"
        "    pass\n"
        "print(before == INFO, get_verbosity() == WARNING)"
    )

    assert python(code).stdout == "True True\n"


def test_servers_started_again_and_again_watch_for_optuna_once() -> None:
    code = (
        "import sys\n"
        "from tuner import _session\n"
        "for _ in range(3):\n"
        "    with _session.serve_suggestions(None):\n"
        "        pass\n"
        "print(sum(type(f).__name__ == '_AfterImport' for f in sys.meta_path))\n"
        "import optuna\n"
        "print(sum(type(f).__name__ == '_AfterImport' for f in sys.meta_path))"
    )

    assert python(code).stdout == "1\n0\n"


def test_a_tpe_run_prints_no_optuna_info_lines(tmp_path: Path) -> None:
    document = support.experiment_document(
        "quiet",
        command=["/bin/echo", "loss=${trialParameters.x}"],
        parameters=[support.double_parameter("x", 0, 1)],
        algorithm="tpe",
        parallel=1,
        max_trials=2,
        image="none",
    )
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    code = (
        "import sys\n"
        "from tuner.cli import main\n"
        "sys.exit(main(['run', 'experiment.yaml', '--no-progress']))"
    )

    done = python(code, cwd=tmp_path)

    assert "Succeeded" in done.stdout
    assert "[I " not in done.stderr, done.stderr  # Optuna's INFO format: "[I <time>] ..."
