"""Collector checkpoint: where a trial's metrics collector stopped reading (byte offset and
steps), stored with the observations it covers, so that a restarted controller resumes
instead of deleting and re-reading the trial's whole log.

Revision ID: 0004_collector_checkpoint
Revises: 0003_trial_labels
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_collector_checkpoint"
down_revision: str | None = "0003_trial_labels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("trials", sa.Column("collector_checkpoint", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("collector_checkpoint")
