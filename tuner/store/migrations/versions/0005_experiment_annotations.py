"""Experiment annotations: the Experiment's ``metadata.annotations``, stored with its spec,
because tuner's extensions live there (the observation cap, tokenless reports, the pbt
checkpoint volume) and a controller service drives the stored experiment, not the file.
NULL for experiments stored before this revision: their annotations were never kept.

Revision ID: 0005_experiment_annotations
Revises: 0004_collector_checkpoint
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_experiment_annotations"
down_revision: str | None = "0004_collector_checkpoint"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("experiments", sa.Column("annotations", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("annotations")
