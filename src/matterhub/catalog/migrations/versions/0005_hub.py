"""Hub: servable names are unique across the hub (a name taken by another owner is a conflict).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 10:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("servables", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_servables_name", ["name"])


def downgrade() -> None:
    with op.batch_alter_table("servables", schema=None) as batch_op:
        batch_op.drop_constraint("uq_servables_name", type_="unique")
