"""Fuzzing the command line in-process: random argument lists for the commands that read
(validate, get, describe, best, logs) and ``tuner run`` of refused Experiment files. Every
call ends with an exit code, never a traceback; a refusal exits 2 naming what it refuses;
a refused ``tuner run`` writes no database."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tuner.cli import main
from tuner.spec import SpecError, loads

SCALE = 25 if os.environ.get("TUNER_FUZZ_PROFILE") == "fuzz" else 1
VALID = Path(__file__).resolve().parents[1] / "spec" / "valid" / "random-job.yaml"

words = st.one_of(
    st.sampled_from(
        [
            "validate",
            "get",
            "experiments",
            "trials",
            "describe",
            "experiment",
            "trial",
            "best",
            "logs",
            "-o",
            "json",
            "yaml",
            "table",
            "--db",
            "--sort-by",
            "--status",
            "-v",
            "--",
            "sqlite:///",
            "postgresql://u:p@127.0.0.1:notaport/x",
            "",
            "-",
            "--help-not",
        ]
    ),
    st.text(
        alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
        max_size=12,
    ),
)
READ_COMMANDS = ["validate", "get", "describe", "best", "logs"]


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:  # contextlib.chdir is Python 3.11+
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_cli(argv: list[str], cwd: Path) -> tuple[int, str]:
    """``tuner ARGV`` in this process, in ``cwd``: its exit code and stderr."""
    err = io.StringIO()
    with (
        _chdir(cwd),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's usage errors
            code = e.code if isinstance(e.code, int) else 2
    return code, err.getvalue()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz-cli")
    (path / "exp.yaml").write_text(VALID.read_text(), encoding="utf-8")
    return path


@settings(max_examples=300 * SCALE)
@example("get", ["experiments", "--db", "postgresql://u:p@127.0.0.1:notaport/x"])
@example("get", ["experiments", "--db", ""])
@example("validate", ["exp.yaml", "exp.yaml"])
# Found by this suite: argparse quoted a misplaced URL, password included.
@example("get", ["postgresql://u:p@127.0.0.1:notaport/x"])
@given(st.sampled_from(READ_COMMANDS), st.lists(words, max_size=6))
def test_read_commands_exit_with_a_code_and_never_create_a_database(
    workdir: Path, command: str, rest: list[str]
) -> None:
    argv = [command, *rest]
    before = set(os.listdir(workdir)) - {"bad.yaml"}
    code, err = run_cli(argv, workdir)
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err
    assert "p@127" not in err  # a --db password is never printed
    assert set(os.listdir(workdir)) - {"bad.yaml"} == before, "a read command created a file"


@settings(max_examples=120 * SCALE)
@given(st.integers(min_value=0), st.text(max_size=12))
def test_run_of_a_refused_file_exits_2_and_writes_nothing(
    workdir: Path, at: int, junk: str
) -> None:
    text = VALID.read_text()
    cut = at % (len(text) + 1)
    text = text[:cut] + junk + text[cut:]
    try:
        loads(text)
    except SpecError:
        pass
    else:
        return  # still valid: running it is not this test's business
    (workdir / "bad.yaml").write_text(text, encoding="utf-8")
    code, err = run_cli(["run", "bad.yaml", "--db", "sqlite:///fuzz.db", "--no-progress"], workdir)
    assert code == 2, err
    assert err.startswith("bad.yaml: "), err  # each problem names the file, then the field
    assert not (workdir / "fuzz.db").exists()
    assert not (workdir / "runs").exists()
