"""Packaging: every extra installs beside the others without a resolver conflict (kfp, the
``pipeline`` extra, caps the kubernetes client that the ``kubernetes`` extra wants), checked
by pip itself: ``pip check`` in this environment, and a dry-run resolution of all extras
together against PyPI (skipped, with the reason, when PyPI cannot be reached)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALL_EXTRAS = "kubernetes,pipeline,postgres,mysql,dashboard,mlflow,examples"


def test_the_installed_environment_has_no_broken_requirement() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _pypi_reachable() -> str | None:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/kfp/", timeout=10):
            return None
    except (urllib.error.URLError, OSError) as e:
        return f"PyPI is not reachable ({e}); the resolution needs it"


@pytest.mark.network
@pytest.mark.parametrize("extras", [ALL_EXTRAS, "kubernetes"])
def test_extras_resolve_to_one_kubernetes_client_that_kfp_accepts(
    extras: str, tmp_path: Path
) -> None:
    """All extras at once must resolve; and the kubernetes extra alone must not pick a
    client that a later ``pip install 'tuner[pipeline]'`` would have to replace."""
    unreachable = _pypi_reachable()
    if unreachable:
        pytest.skip(unreachable)
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--no-build-isolation", "--quiet", "--report", str(report),
            "-e", f"{ROOT}[{extras}]",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # ResolutionImpossible names the conflict
    chosen = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    if extras == ALL_EXTRAS:
        assert "kfp" in chosen and "mlflow-skinny" in chosen
    # kfp 2.x requires kubernetes<31.
    assert int(chosen["kubernetes"].split(".")[0]) < 31
