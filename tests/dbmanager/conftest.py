"""DBManager fixtures: a SQLite store with one experiment and two trials, served by a real
DBManager on a loopback port, and a stub that calls it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tuner.dbmanager import serve
from tuner.protos import api_pb2_grpc
from tuner.store import Store

TRIALS = ("exp-a", "exp-b")


@dataclass
class Served:
    store: Store
    address: str
    stub: api_pb2_grpc.DBManagerStub


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'tuner.db'}") as s:
        s.create_experiment("exp", "default", {"objective": {"type": "minimize"}})
        s.create_trials("exp", [(name, {"x": "1"}) for name in TRIALS])
        yield s


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    with serve(store) as address, grpc.insecure_channel(address) as channel:
        yield Served(store, address, api_pb2_grpc.DBManagerStub(channel))
