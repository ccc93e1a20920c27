"""PostgreSQL sessions end transactions a frozen controller leaves open."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tuner.store import Store
from tuner.store._engine import POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_MS


def test_idle_transactions_time_out_on_postgresql(store: Store) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL session setting")
    with store.engine.connect() as connection:
        shown = connection.execute(text("SHOW idle_in_transaction_session_timeout")).scalar()
    assert shown == f"{POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_MS // 60_000}min"
