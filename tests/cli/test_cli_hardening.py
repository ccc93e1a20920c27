"""Regressions of the reliability pass (issue 17), through the real CLI in a subprocess:
passwords never printed, refusals exit 2 (no traceback) and leave no database behind, a
closed pipe ends quietly, huge bad values are cut."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from support.databases import server_url

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart.yaml"
SECRET = "s3cr3t-Pa55"
TIMEOUT = 120  # guards against hangs only


def tuner(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd or REPO,
    )


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def quickstart_copy(tmp_path: Path, **replace: str) -> Path:
    text = QUICKSTART.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    target = tmp_path / "experiment.yaml"
    target.write_text(text, encoding="utf-8")
    (tmp_path / "quickstart_train.py").write_text(
        (REPO / "examples" / "quickstart_train.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    return target


# -- item 3: database passwords ------------------------------------------------------


def test_get_experiments_with_the_database_down_does_not_print_the_password() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    result = tuner("get", "experiments", "--db", f"postgresql://user:{SECRET}@127.0.0.1:1/x")
    assert result.returncode == 1, result.stderr
    assert "user:***@127.0.0.1:1" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_not_found_hint_masks_the_password_of_the_db_url(tmp_path: Path) -> None:
    from tuner.cli._common import CliError
    from tuner.cli._inspect_common import not_found
    from tuner.store import ExperimentNotFoundError, Store

    with Store.open(path=tmp_path / "t.db") as store:
        error = not_found(ExperimentNotFoundError("nope"), store, f"postgresql://u:{SECRET}@db/x")
    assert isinstance(error, CliError)
    assert "--db postgresql://u:***@db/x" in str(error)
    assert SECRET not in str(error)


@pytest.mark.postgres
def test_not_found_on_postgres_does_not_print_the_password() -> None:
    url = make_url(server_url("postgresql"))
    if url.password:
        pytest.skip("the test database URL has a password of its own")
    # A local trust-authenticated server ignores the password; the CLI must still hide it.
    with_password = url.set(password=SECRET).render_as_string(hide_password=False)
    for command in (
        ("get", "trials", "no-such-experiment"),
        ("describe", "experiment", "no-such-experiment"),
        ("best", "no-such-experiment"),
        ("delete", "experiment", "no-such-experiment", "--yes"),
    ):
        result = tuner(*command, "--db", with_password)
        assert_no_traceback(result)
        assert result.returncode != 0, (command, result.stdout)
        assert "not found" in result.stderr or "unrecognized" in result.stderr, result.stderr
        assert SECRET not in result.stdout + result.stderr, command


def test_log_lines_mask_url_passwords() -> None:
    import logging

    from tuner.redact import MaskingFormatter

    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "opening %s", (f"mysql://root:{SECRET}@h/db",), None
    )
    line = MaskingFormatter("%(message)s").format(record)
    assert line == "opening mysql://root:***@h/db"


# -- item 4: tracebacks become exit 2 -------------------------------------------------


def test_run_with_max_trial_count_beyond_int32_exits_2_before_running(tmp_path: Path) -> None:
    spec = quickstart_copy(tmp_path, **{"maxTrialCount: 12": "maxTrialCount: 2147483648"})
    result = tuner("run", spec, "--db", f"sqlite:///{tmp_path / 't.db'}", cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode == 2
    assert "spec.maxTrialCount: 2147483648 is greater than 2147483647" in result.stderr


def test_db_url_with_a_port_that_is_not_a_number_exits_2() -> None:
    result = tuner("get", "experiments", "--db", f"postgresql://u:{SECRET}@127.0.0.1:notaport/x")
    assert_no_traceback(result)
    assert result.returncode == 2
    assert "--db" in result.stderr
    assert SECRET not in result.stderr


def test_dry_run_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # `| head -1` that has already exited: the read end is closed before the first write,
    # so every write fails with EPIPE (deterministically, whatever the output's size).
    spec = quickstart_copy(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        writer = subprocess.run(
            [sys.executable, "-m", "tuner.cli", "run", str(spec), "--dry-run"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT,
            cwd=tmp_path,
        )
    finally:
        os.close(write_end)
    assert_no_traceback(writer)
    assert "BrokenPipe" not in writer.stderr
    assert writer.returncode == 0


# -- item 5: wrongly accepted input; nothing left behind ------------------------------


def test_empty_db_url_is_refused(tmp_path: Path) -> None:
    spec = quickstart_copy(tmp_path)
    result = tuner("run", spec, "--db", "", cwd=tmp_path)
    assert result.returncode == 2
    assert "--db" in result.stderr
    assert not (tmp_path / "tuner.db").exists()


def test_refused_run_leaves_no_sqlite_file(tmp_path: Path) -> None:
    # Refused by the suggestion service (ValidateAlgorithmSettings), after the store opened.
    spec = quickstart_copy(tmp_path, **{'value: "7"': 'value: "seven"'})
    database = tmp_path / "fresh.db"
    result = tuner("run", spec, "--db", f"sqlite:///{database}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "random_state" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiment.yaml", "quickstart_train.py"]


# -- item 6: a huge bad value is named and cut ----------------------------------------


def test_20kb_bad_setting_exits_2_naming_the_setting(tmp_path: Path) -> None:
    spec = quickstart_copy(tmp_path, **{'value: "7"': f'value: "{"x" * 20_000}"'})
    result = tuner("run", spec, "--db", f"sqlite:///{tmp_path / 't.db'}", cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode == 2, result.stderr
    assert "RESOURCE_EXHAUSTED" not in result.stderr
    assert "algorithm setting 'random_state'" in result.stderr
    assert len(result.stderr) < 2_000
