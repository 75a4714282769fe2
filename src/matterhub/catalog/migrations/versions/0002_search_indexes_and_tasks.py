"""Search indexes and their durable write tasks (Discover).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 01:21:43.820723
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_indexes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "writers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_indexes")),
        sa.UniqueConstraint("name", name=op.f("uq_search_indexes_name")),
    )
    op.create_table(
        "search_tasks",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("index_id", sa.String(length=36), nullable=False),
        sa.Column("task_type", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column(
            "additional_details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["index_id"],
            ["search_indexes.id"],
            name=op.f("fk_search_tasks_index_id_search_indexes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_search_tasks_owner_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_search_tasks")),
        sa.UniqueConstraint("id", name=op.f("uq_search_tasks_id")),
    )
    with op.batch_alter_table("search_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_search_tasks_index_id"), ["index_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_search_tasks_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("search_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_tasks_state"))
        batch_op.drop_index(batch_op.f("ix_search_tasks_index_id"))

    op.drop_table("search_tasks")
    op.drop_table("search_indexes")
