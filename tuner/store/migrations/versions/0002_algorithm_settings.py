"""The algorithm settings a suggestion service returned, stored with the experiment.

Revision ID: 0002_algorithm_settings
Revises: 0001
Create Date: 2026-12-04

Katib's suggestion services may return settings in ``GetSuggestionsReply.algorithm``
(hyperband keeps its whole state there); the controller stores them in
``experiments.algorithm_settings`` (a JSON list of ``[name, value]`` pairs, NULL when none
came back) and sends them back with the next request.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_algorithm_settings"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("algorithm_settings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("algorithm_settings")
