"""Alembic environment: runs migrations on the connection `Store.open` passes in.

`Store.open` builds the Alembic config in code and puts an open connection (inside the
transaction that holds the migration lock) in `config.attributes["connection"]`. To write a
new revision, point an alembic.ini's script_location at this folder and run
`alembic -c that.ini -x url=sqlite:///dev.db revision --autogenerate -m "..."`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from tuner.store._models import Base
from tuner.store._schema import VERSION_TABLE

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        # SQLite alters tables by copying them; later revisions need batch mode there.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("tuner's store migrations run online only (Store.open applies them)")

_connection = config.attributes.get("connection")
if _connection is not None:
    _run(_connection)
else:
    _url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not _url:
        raise RuntimeError("no database: pass -x url=... or set sqlalchemy.url")
    _engine = create_engine(_url)
    try:
        with _engine.begin() as _conn:
            _run(_conn)
    finally:
        _engine.dispose()
