"""SQLAlchemy table models of the store; rows only, converted to domain records in `_convert`.

Types are chosen to mean the same on SQLite, PostgreSQL and MySQL/MariaDB: aware UTC
datetimes with microseconds, 8-byte floats, binary-collated names, portable JSON.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

NAME_LENGTH = 255
"""Longest experiment, trial, metric or lease-owner name (utf8mb4: 1020 bytes of index key)."""

_MYSQL = ("mysql", "mariadb")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend.

    PostgreSQL stores `timestamptz`; SQLite and MySQL have no zone, so UTC is stored naive
    and the zone is put back on read. MySQL's DATETIME drops fractions unless fsp=6 is asked.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL:
            from sqlalchemy.dialects import mysql  # here: a SQLite run need not import it

            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; the store needs aware UTC")
        value = value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Name(TypeDecorator[str]):
    """A name, VARCHAR(255); on MySQL/MariaDB in the binary utf8mb4 collation, since their
    default collations are case- and accent-insensitive and names must compare exactly as
    they do on SQLite and PostgreSQL. (A type variant would import the MySQL dialect with
    the models, which costs every run on SQLite or PostgreSQL ~10 ms.)"""

    impl = String(NAME_LENGTH)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL:
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(
                mysql.VARCHAR(NAME_LENGTH, charset="utf8mb4", collation="utf8mb4_bin")
            )
        return dialect.type_descriptor(String(NAME_LENGTH))


def _name_type() -> TypeEngine[str]:
    return Name()


# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not BIGINT.
_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")

# Non-finite floats: MySQL's DOUBLE holds neither NaN nor infinity and SQLite reads NaN back
# as NULL, so such values are stored as NULL plus one of these words in a companion column
# (Optuna's RDB storage does the same with a value-type column).
_NONFINITE_WORDS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode_float(value: float | None) -> tuple[float | None, str | None]:
    """Split a float into (finite value or None, non-finite word or None) for storage."""
    if value is None or math.isfinite(value):
        return value, None
    if math.isnan(value):
        return None, "nan"
    return None, "inf" if value > 0 else "-inf"


def decode_float(value: float | None, nonfinite: str | None) -> float | None:
    """Inverse of `encode_float`."""
    if nonfinite is not None:
        return _NONFINITE_WORDS[nonfinite]
    return value


def encode_json_float(value: float) -> float | str:
    """A float as JSON can hold it: finite as a number, else 'nan', 'inf' or '-inf'."""
    return value if math.isfinite(value) else encode_float(value)[1]  # type: ignore[return-value]


def decode_json_float(value: float | int | str) -> float:
    """Inverse of `encode_json_float`."""
    return _NONFINITE_WORDS[value] if isinstance(value, str) else float(value)


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""

    # Fixed constraint names, so migrations can name what they alter on every backend.
    metadata = MetaData(
        naming_convention={
            "pk": "pk_%(table_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s",
            "ix": "ix_%(table_name)s_%(column_0_name)s",
        }
    )


_MYSQL_TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def add_mysql_table_options() -> None:
    """Give the tables their MySQL/MariaDB options (InnoDB, utf8mb4) before DDL there: not
    in ``__table_args__``, where checking them imported the MySQL dialect for every backend.
    Idempotent."""
    for table in Base.metadata.tables.values():
        for key, value in _MYSQL_TABLE_OPTIONS.items():
            table.dialect_kwargs[key] = value


class ExperimentRow(Base):
    """An experiment, its Katib spec, its status and the controller lease over it."""

    __tablename__ = "experiments"
    __table_args__ = (
        # The controller looks for active experiments whose lease is free or expired.
        Index("ix_experiments_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(_name_type(), unique=True)
    namespace: Mapped[str] = mapped_column(_name_type())
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    best_trial_name: Mapped[str | None] = mapped_column(_name_type())
    lease_owner: Mapped[str | None] = mapped_column(_name_type())
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # [[name, value], ...] the suggestion service returned (Katib's Suggestion status).
    algorithm_settings: Mapped[list[list[str]] | None] = mapped_column(JSON)
    # The Experiment's metadata.annotations (tuner's extensions live there); NULL for
    # experiments stored before they were kept (revision 0005).
    annotations: Mapped[dict[str, str] | None] = mapped_column(JSON)


class TrialRow(Base):
    """A trial: its parameter assignment, status, outcome and how its executor finds it."""

    __tablename__ = "trials"
    __table_args__ = (Index("ix_trials_experiment_status", "experiment_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(_name_type(), unique=True)
    parameters: Mapped[dict[str, str]] = mapped_column(JSON)
    # What the suggestion service asked to put on the trial (pbt's generation and parent).
    labels: Mapped[dict[str, str] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(32))
    objective_value: Mapped[float | None] = mapped_column(Double())
    objective_nonfinite: Mapped[str | None] = mapped_column(String(4))
    metrics_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    executor_kind: Mapped[str | None] = mapped_column(String(32))
    executor_ref: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    log_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Where the trial's metrics collector stopped, written with the observations it covers.
    collector_checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ObservationRow(Base):
    """One metric value reported by a trial: Katib's observation_logs row, value as a float.

    Katib keeps the value as text. A float is parsed once where metrics enter, compares and
    sorts in SQL, and reads back the same from every backend. No raw text is kept: Katib's
    collectors only report numbers, and its 'unavailable' marker means "no observation",
    which the trial's MetricsUnavailable status records.
    """

    __tablename__ = "observations"
    __table_args__ = (
        Index("ix_observations_trial_metric_time", "trial_id", "metric_name", "timestamp"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    metric_name: Mapped[str] = mapped_column(_name_type())
    value: Mapped[float | None] = mapped_column(Double())
    value_nonfinite: Mapped[str | None] = mapped_column(String(4))
    step: Mapped[int | None] = mapped_column(BigInteger)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
