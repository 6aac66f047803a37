"""The newest schema revision as `rollcall keys show` reads it from the migration files' names."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from rollcall.db import migrations_config
from rollcall.glance import head_revision


def test_the_newest_revision_by_file_name_is_alembics_head() -> None:
    assert head_revision() == ScriptDirectory.from_config(migrations_config()).get_current_head()
