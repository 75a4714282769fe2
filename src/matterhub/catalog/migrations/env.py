"""Alembic environment: always run programmatically with a connection from `Catalog`."""

from __future__ import annotations

from alembic import context

from matterhub.catalog.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `matterhub db upgrade`, not bare alembic")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
