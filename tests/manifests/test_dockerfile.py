"""The Dockerfile (not built here: no container engine in the test environment): what it copies
exists and passes .dockerignore, what it installs and runs exists in pyproject and the CLI,
and the package builds from exactly that build context."""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tuner.cli import build_parser

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    result, pending = [], ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.partition(" ")
        result.append((word.upper(), rest.strip()))
        pending = ""
    return result


def context_files() -> list[Path]:
    """The files `docker build` sends, per .dockerignore (later lines win, `!` re-includes)."""
    rules = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    kept = []
    for path in REPO.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(REPO).as_posix()
        included = True
        parts = relative.split("/")
        for rule in rules:
            negate, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
            if pattern.startswith("**/"):  # at any depth
                hit = any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
            else:  # anchored at the context root; a matching directory takes its contents
                hit = any(
                    fnmatch.fnmatch("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)
                )
            if hit:
                included = negate
        if included:
            kept.append(path)
    return kept


def test_base_image_and_unprivileged_user():
    steps = instructions()
    assert [a.split()[0] for i, a in steps if i == "FROM"] == ["python:3.11.11-slim-bookworm"] * 2
    [user] = [a for i, a in steps if i == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000  # numeric, so runAsNonRoot can verify it
    for path in ("base/controller.yaml", "base/suggestion.yaml"):
        for doc in yaml.safe_load_all((REPO / "manifests" / path).read_text()):
            if doc["kind"] == "Deployment":
                assert doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)


def test_copied_paths_exist_and_are_in_the_build_context():
    sent = {p.relative_to(REPO).as_posix() for p in context_files()}
    copies = [a.split() for i, a in instructions() if i == "COPY" and "--from=" not in a]
    assert copies
    for *sources, _destination in copies:
        for source in sources:
            assert (REPO / source).exists(), source
            assert any(f == source or f.startswith(f"{source}/") for f in sent), source
    assert not any(f.startswith((".venv/", ".git/", "tests/")) for f in sent)


def test_installs_existing_extras_and_runs_the_console_entry_point():
    extras = PYPROJECT["project"]["optional-dependencies"]
    [install] = [a for i, a in instructions() if i == "RUN" and "pip install" in a]
    wanted = install.split('".[')[1].split(']"')[0].split(",")
    assert set(wanted) == {"kubernetes", "postgres", "dashboard"} and set(wanted) <= set(extras)
    [entrypoint] = [json.loads(a) for i, a in instructions() if i == "ENTRYPOINT"]
    assert entrypoint == ["tuner"]
    assert entrypoint[0] in PYPROJECT["project"]["scripts"]


def manifest_commands() -> list[list[str]]:
    commands = []
    for path in (REPO / "manifests").rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            pod = ((doc or {}).get("spec") or {}).get("template", {}).get("spec") or {}
            commands += [
                [*c["command"], *c.get("args", ())]
                for c in pod.get("containers") or ()
                if c.get("image", "").startswith("tuner") and c.get("command")
            ]
    return commands


def test_manifest_commands_are_tuner_subcommands_with_their_options():
    assert PYPROJECT["project"]["scripts"]["tuner"] == "tuner.cli:main"
    [subcommands] = [
        a.choices for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ]
    commands = manifest_commands()
    assert {c[1] for c in commands} == {"controller", "suggestion-server", "dashboard"}
    for command in commands:
        assert command[0] == "tuner" and command[1] in subcommands, command
        options = {o for a in subcommands[command[1]]._actions for o in a.option_strings}
        used = {arg for arg in command[2:] if arg.startswith("--")}
        assert used <= options, (command, used - options)


def test_package_builds_from_the_build_context_alone(tmp_path):
    context = tmp_path / "context"
    for path in context_files():
        target = context / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(context),
        ],
        check=True,
        timeout=300,
        cwd=tmp_path,
    )
    [wheel] = (tmp_path / "dist").glob("tuner-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("suggestion/") for n in names)
    assert any(n.startswith("tuner/store/migrations/versions/") for n in names)
    [entry_points] = [n for n in names if n.endswith("entry_points.txt")]
    assert "tuner = tuner.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
