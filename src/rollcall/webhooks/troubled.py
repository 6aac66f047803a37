"""Which deliveries an operator asks about (a module of its own: the CLI's option names them
without loading the webhooks' queries)."""

from __future__ import annotations

import enum


class Troubled(enum.StrEnum):
    """Deliveries that are not going well."""

    FAILED = "failed"  # gave up
    RETRYING = "retrying"  # an attempt failed; another is due
    FAILING = "failing"  # either
