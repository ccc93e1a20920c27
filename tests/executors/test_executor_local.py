"""LocalExecutor: exit codes, logs, argv without a shell, env, working directory, deadline and
kill of the whole process group."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

from tuner.executors import ExitReason, LaunchError, LocalExecutor, TrialHandle

PRINT_ARGS = "import json, sys; print(json.dumps(sys.argv[1:]))"


def _last_json_line(executor: LocalExecutor, handle: TrialHandle) -> object:
    return json.loads(executor.log_path(handle).read_text().splitlines()[-1])


def test_exit_code_zero_is_completed(harness) -> None:
    _, outcome = harness.run("ok", harness.python("pass"))
    assert outcome.reason is ExitReason.COMPLETED
    assert outcome.succeeded and outcome.exit_code == 0 and outcome.signal is None
    assert outcome.started_at is not None and outcome.finished_at is not None


def test_nonzero_exit_code_is_failed_with_that_code(harness) -> None:
    _, outcome = harness.run("bad", harness.python("import sys; sys.exit(3)"))
    assert outcome.reason is ExitReason.FAILED
    assert outcome.exit_code == 3 and not outcome.succeeded
    assert "code 3" in outcome.message


def test_stdout_and_stderr_go_to_one_log_file_in_the_trial_dir(harness, run_dir: Path) -> None:
    code = "import sys; print('out-line', flush=True); print('err-line', file=sys.stderr)"
    handle, _ = harness.run("logs", harness.python(code))
    log = harness.executor.log_path(handle)
    assert log.parent == run_dir / "logs"
    assert log.read_text().splitlines() == ["out-line", "err-line"]


@pytest.mark.parametrize(
    "hostile",
    [
        "$(touch {tmp}/pwned); echo",
        "; touch {tmp}/pwned; reboot",
        "`touch {tmp}/pwned`",
        "a && touch {tmp}/pwned | cat > {tmp}/pwned2 'quoted' \"double\" \\",
    ],
)
def test_hostile_value_reaches_trial_as_one_literal_argument(
    harness, tmp_path: Path, hostile: str
) -> None:
    value = hostile.format(tmp=tmp_path)
    handle, outcome = harness.run("hostile", harness.python(PRINT_ARGS, "--lr", value, "x"))
    assert outcome.succeeded
    assert _last_json_line(harness.executor, handle) == ["--lr", value, "x"]
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_hostile_value_reaches_a_non_python_command_literally(harness, tmp_path: Path) -> None:
    value = f"$(touch {tmp_path}/pwned)"
    handle, outcome = harness.run("printf", ["printf", "%s\\n", value])
    assert outcome.succeeded
    assert harness.executor.log_path(handle).read_text() == value + "\n"
    assert not (tmp_path / "pwned").exists()


def test_container_env_overrides_controller_env(harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNER_TEST_INHERITED", "controller")
    monkeypatch.setenv("TUNER_TEST_OVERRIDDEN", "controller")
    names = ["TUNER_TEST_INHERITED", "TUNER_TEST_OVERRIDDEN", "TUNER_TEST_NEW", "PYTHONUNBUFFERED"]
    code = f"import json, os; print(json.dumps([os.environ.get(n) for n in {names!r}]))"
    env = {"TUNER_TEST_OVERRIDDEN": "container", "TUNER_TEST_NEW": "$(not expanded)"}
    handle, _ = harness.run("env", harness.python(code), env=env)
    assert _last_json_line(harness.executor, handle) == [
        "controller",
        "container",
        "$(not expanded)",
        "1",
    ]


@pytest.mark.parametrize("working_dir", [None, "sub", "ABSOLUTE"])
def test_working_dir_is_the_containers_or_the_default(
    harness, tmp_path: Path, working_dir: str | None
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "elsewhere").mkdir()
    expected = {
        None: tmp_path,  # the executor's default_working_dir
        "sub": tmp_path / "sub",  # relative: under the default
        "ABSOLUTE": tmp_path / "elsewhere",
    }[working_dir]
    given = str(tmp_path / "elsewhere") if working_dir == "ABSOLUTE" else working_dir
    code = "import json, os; print(json.dumps(os.getcwd()))"
    handle, _ = harness.run("cwd", harness.python(code), working_dir=given)
    assert Path(str(_last_json_line(harness.executor, handle))) == expected.resolve()


@pytest.mark.parametrize("python_name", ["python", "python3"])
def test_bare_python_runs_with_the_interpreter_running_tuner(
    harness, tmp_path: Path, python_name: str
) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    # With no python on PATH, only the mapping to sys.executable can make this run.
    code = "import json, sys; print(json.dumps(sys.executable))"
    handle, outcome = harness.run("py", [python_name, "-c", code], env={"PATH": str(empty)})
    assert outcome.succeeded, harness.executor.log_path(handle).read_text()
    assert _last_json_line(harness.executor, handle) == sys.executable


def test_missing_command_fails_with_127_and_says_why(harness) -> None:
    handle, outcome = harness.run("missing", ["no-such-command-tuner-test", "--x"])
    assert outcome.reason is ExitReason.FAILED and outcome.exit_code == 127
    assert "no-such-command-tuner-test" in outcome.message
    assert "no-such-command-tuner-test" in harness.executor.log_path(handle).read_text()


def test_missing_working_dir_fails_and_says_which(harness, tmp_path: Path) -> None:
    _, outcome = harness.run("nodir", harness.python("pass"), working_dir="does-not-exist")
    assert outcome.reason is ExitReason.FAILED
    assert str(tmp_path / "does-not-exist") in outcome.message


@pytest.mark.parametrize("grandchild", ["ignore-term", "default"])
def test_deadline_kills_the_whole_group_and_reports_deadline_exceeded(
    harness, grandchild: str
) -> None:
    executor = harness.executor
    handle = executor.launch(
        "slow", harness.python(harness.FAMILY_TRIAL, grandchild), {}, None, 1.5
    )
    info = harness.wait_for_log_line(handle, r"pgid=(\d+) grandchild=(\d+)")
    pgid, grandchild_pid = int(info[1]), int(info[2])
    outcome = executor.wait(handle, harness.WAIT_SECONDS)
    assert outcome is not None and outcome.reason is ExitReason.DEADLINE_EXCEEDED
    assert outcome.deadline_exceeded and "activeDeadlineSeconds" in outcome.message
    assert harness.live_group_members(pgid) == []
    assert not harness.exists(grandchild_pid)  # dead and reaped: no zombie either


def test_kill_terminates_the_whole_group(harness) -> None:
    executor = harness.executor
    argv = harness.python(harness.FAMILY_TRIAL, "ignore-term")
    handle = executor.launch("victim", argv, {}, None, None)
    info = harness.wait_for_log_line(handle, r"pgid=(\d+) grandchild=(\d+)")
    pgid, grandchild_pid = int(info[1]), int(info[2])
    assert harness.is_alive(grandchild_pid)
    executor.kill(handle)
    executor.kill(handle)  # idempotent
    outcome = executor.wait(handle, harness.WAIT_SECONDS)
    assert outcome is not None and outcome.reason is ExitReason.KILLED
    assert harness.live_group_members(pgid) == []
    assert not harness.exists(grandchild_pid)  # dead and reaped: no zombie either
    executor.kill(handle)  # safe after the end
    assert executor.poll(handle) == outcome


def test_kill_right_after_launch_reports_killed(harness) -> None:
    executor = harness.executor
    handle = executor.launch(
        "early", harness.python("import time; time.sleep(600)"), {}, None, None
    )
    executor.kill(handle)
    outcome = executor.wait(handle, harness.WAIT_SECONDS)
    assert outcome is not None and outcome.reason is ExitReason.KILLED


def test_leftover_background_process_is_killed_when_main_process_exits(harness) -> None:
    code = (
        "import os, subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print(f'pgid={os.getpgid(0)} grandchild={p.pid}', flush=True)\n"
    )
    handle, outcome = harness.run("leaky", harness.python(code))
    info = harness.wait_for_log_line(handle, r"pgid=(\d+) grandchild=(\d+)")
    assert outcome.succeeded
    assert harness.live_group_members(int(info[1])) == []
    assert not harness.exists(int(info[2]))


def test_a_trial_name_is_launched_only_once(harness) -> None:
    harness.launch_gated("once")
    with pytest.raises(LaunchError, match="already exists"):
        harness.executor.launch("once", harness.python("pass"), {}, None, None)


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("trial_name", {"trial_name": "../escape"}),
        ("argv", {"argv": []}),
        ("argv", {"argv": "python3 -c pass"}),
        (r"argv\[1\]", {"argv": ["echo", "nul\0byte"]}),
        ("env", {"env": {"A=B": "x"}}),
        ("deadline_seconds", {"deadline_seconds": 0}),
    ],
)
def test_invalid_launch_requests_name_the_field(
    executor: LocalExecutor, field: str, change: dict[str, object]
) -> None:
    request: dict[str, object] = {
        "trial_name": "fine",
        "argv": ["echo"],
        "env": {},
        "working_dir": None,
        "deadline_seconds": None,
    }
    request.update(change)
    with pytest.raises(LaunchError, match=f"^{field}"):
        executor.launch(**request)  # type: ignore[arg-type]


def test_kill_escalates_to_sigkill_after_the_grace_period(harness) -> None:
    code = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print(f'pgid={os.getpgid(0)}', flush=True)\n"
        "time.sleep(600)\n"
    )
    executor = harness.executor
    handle = executor.launch("stubborn", harness.python(code), {}, None, None)
    pgid = int(harness.wait_for_log_line(handle, r"pgid=(\d+)")[1])
    executor.kill(handle)
    outcome = executor.wait(handle, harness.WAIT_SECONDS)
    assert outcome is not None and outcome.reason is ExitReason.KILLED
    assert outcome.signal == signal.SIGKILL
    assert harness.live_group_members(pgid) == []


def test_a_process_that_left_the_group_is_killed_too_when_the_trial_ends(harness) -> None:
    code = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],\n"
        "                     start_new_session=True)\n"
        "print(f'escaped={p.pid}', flush=True)\n"
    )
    handle, outcome = harness.run("daemonizes", harness.python(code))
    escaped = int(harness.wait_for_log_line(handle, r"escaped=(\d+)")[1])
    assert outcome.succeeded
    assert not harness.exists(escaped)
