"""How long work says how far it has come: a `Progress` is called with the step being done, how
much of it is done, and of how much (None when unknown). The CLI draws it (`cli/progress.py`)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int | None], None]


def quiet(step: str, done: int, total: int | None) -> None:
    """A `Progress` that shows nothing."""
