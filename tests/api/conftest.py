"""Fixtures of the Python API tests: one real suggestion server on a loopback port for the
module, and a SQLite URL in the test's temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from suggestion.service import create_server


@pytest.fixture(scope="module")
def suggestion_address() -> Iterator[str]:
    server, port = create_server("127.0.0.1:0")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tuner.db'}"
