"""What text rollcall keeps, written once: its lengths, the patterns the staff API's documents
declare, and what counts as a missing value.

Every column of text is one of two widths, and every check and schema that bounds a text uses
the same names, so a bound can never drift from its column.
"""

from __future__ import annotations

from typing import Any

TEXT_LENGTH = 255  # names, titles, descriptions of one line
WORD_LENGTH = 64  # a word: a post type, a verb, a source, a state's name

# Text a database can hold: no NUL (in the schema, so generated examples respect it) and no
# lone surrogate (JSON can spell one; PostgreSQL refuses both).
STORABLE_TEXT = "^[^\\u0000]*$"
# ... and not blank: at least one character that is neither whitespace nor a control character.
FILLED_TEXT = "^[^\\u0000]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000]*$"


def is_missing(value: Any) -> bool:
    """What every rule reads as a missing value: absent, null, or blank text."""
    return value is None or (isinstance(value, str) and not value.strip())


def required(name: str) -> str:
    """The one sentence for a required value that is missing."""
    return f"The {name.replace('_', ' ')} field is required."
