"""Initial schema: experiments, trials, observations.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Column types are spelled out here rather than imported from the models, so this revision
keeps creating the same tables when the models change later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MYSQL = ("mysql", "mariadb")
_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def _name() -> sa.types.TypeEngine:
    return sa.String(255).with_variant(
        mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin"), *_MYSQL
    )


def _time() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), *_MYSQL)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _name(), nullable=False),
        sa.Column("namespace", _name(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("completed_at", _time(), nullable=True),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("best_trial_name", _name(), nullable=True),
        sa.Column("lease_owner", _name(), nullable=True),
        sa.Column("lease_expires_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
        **_OPTIONS,
    )
    op.create_index("ix_experiments_status_lease", "experiments", ["status", "lease_expires_at"])

    op.create_table(
        "trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", _name(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("objective_value", sa.Double(), nullable=True),
        sa.Column("objective_nonfinite", sa.String(4), nullable=True),
        sa.Column("metrics_summary", sa.JSON(), nullable=True),
        sa.Column("executor_kind", sa.String(32), nullable=True),
        sa.Column("executor_ref", sa.JSON(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("completed_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trials"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name="fk_trials_experiment_id",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("name", name="uq_trials_name"),
        **_OPTIONS,
    )
    op.create_index("ix_trials_experiment_status", "trials", ["experiment_id", "status"])

    op.create_table(
        "observations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("metric_name", _name(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("value_nonfinite", sa.String(4), nullable=True),
        sa.Column("step", sa.BigInteger(), nullable=True),
        sa.Column("timestamp", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_observations"),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name="fk_observations_trial_id", ondelete="CASCADE"
        ),
        **_OPTIONS,
    )
    op.create_index(
        "ix_observations_trial_metric_time",
        "observations",
        ["trial_id", "metric_name", "timestamp"],
    )


def downgrade() -> None:
    op.drop_table("observations")
    op.drop_table("trials")
    op.drop_table("experiments")
