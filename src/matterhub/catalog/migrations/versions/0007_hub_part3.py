"""Hub part 3: servable version identifiers, replica bounds per servable, access requests.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 07:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("servables", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scaling", _JSON, nullable=False, server_default=sa.text("'{}'"))
        )

    with op.batch_alter_table("servable_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pid", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("pid_state", sa.String(length=16), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_servable_versions_pid"), ["pid"])

    op.create_table(
        "access_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("servable_id", sa.String(length=36), nullable=False),
        sa.Column("requester_id", sa.String(length=36), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("granted_to", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["servable_id"],
            ["servables.id"],
            name=op.f("fk_access_requests_servable_id_servables"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"],
            ["users.id"],
            name=op.f("fk_access_requests_requester_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
            name=op.f("fk_access_requests_decided_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_requests")),
    )
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_access_requests_servable_id"), ["servable_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_access_requests_requester_id"), ["requester_id"], unique=False
        )
        batch_op.create_index(
            "ix_access_requests_servable_status", ["servable_id", "status"], unique=False
        )


def downgrade() -> None:
    op.drop_table("access_requests")
    with op.batch_alter_table("servable_versions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_servable_versions_pid"), type_="unique")
        batch_op.drop_column("pid_state")
        batch_op.drop_column("pid")
    with op.batch_alter_table("servables", schema=None) as batch_op:
        batch_op.drop_column("scaling")
