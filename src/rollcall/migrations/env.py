"""Alembic environment: migrations run on the connection rollcall hands over (see `db.migrate`)."""

from alembic import context

import rollcall.models  # noqa: F401  (registers every table on Base.metadata)
from rollcall.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `rollcall migrate`, which provides the connection")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
