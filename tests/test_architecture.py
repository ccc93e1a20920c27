"""The import contracts of docs/architecture.md (pyproject.toml, run by `make lint`): they hold
for the tree, and they fail when someone adds a back-edge or reaches into a private module."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # lint-imports puts its working directory first on sys.path, so a copy of the packages
    # there is analysed instead of the installed (editable) ones.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and the contracts, to break on purpose."""
    for package in ("tuner", "suggestion"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def inject(tree: Path, module: str, line: str) -> None:
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # injected by the test\n")


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # the store (below the controller) importing the CLI (a face): a back-edge
        ("tuner/store/_domain.py", "import tuner.cli", "tuner.store is not allowed to import"),
        # a suggestion algorithm reaching up into the controller
        (
            "suggestion/algorithms/_random.py",
            "import tuner.controller",
            "suggestion is not allowed to import tuner.controller",
        ),
        # another package's private module
        (
            "tuner/service/_submit.py",
            "from tuner.controller._decide import EDITABLE_FIELDS as _F",
            "tuner.service._submit -> tuner.controller._decide",
        ),
        # protobuf in the controller's loop helpers, or in the loop itself
        (
            "tuner/controller/_trials.py",
            "from tuner.protos import api_pb2 as _pb",
            "tuner.controller._trials -> tuner.protos.api_pb2",
        ),
        (
            "tuner/controller/_controller.py",
            "from tuner.protos import api_pb2 as _pb",
            "tuner.controller._controller -> tuner.protos.api_pb2",
        ),
        # gRPC outside the controller's suggestion client
        (
            "tuner/controller/_early_stopping.py",
            "import grpc as _grpc",
            "tuner.controller._early_stopping -> grpc",
        ),
    ],
)
def test_an_added_forbidden_import_breaks_the_contracts(
    tree: Path, module: str, line: str, broken: str
) -> None:
    assert lint_imports(tree).returncode == 0  # the copy itself is clean

    inject(tree, module, line)
    result = lint_imports(tree)

    assert result.returncode != 0
    assert broken in result.stdout
