"""Fixtures of the Python API tests: a SQLite URL in the test's temp dir (the suggestion
server is the shared ``suggestion_address`` of tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tuner.db'}"
