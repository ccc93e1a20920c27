"""Trial labels: what the suggestion service asked to put on each trial (Katib's
``GetSuggestionsReply.ParameterAssignments.labels``, e.g. pbt's generation and parent).

Revision ID: 0003_trial_labels
Revises: 0002_algorithm_settings
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_trial_labels"
down_revision: str | None = "0002_algorithm_settings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("trials", sa.Column("labels", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("labels")
