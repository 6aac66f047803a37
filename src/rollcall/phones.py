"""Phone numbers: the one normalizer (E.164 of a possible number) and the one reading of a number
someone filters by, for every interface.

libphonenumber's "possible" test, not "valid": unassigned numbers such as +1555... must pass.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import phonenumbers

from rollcall.errors import InvalidInput


class InvalidMobile(ValueError):
    """Not even a possible phone number."""


@functools.lru_cache(maxsize=65536)
def e164(value: str, region: str) -> str:
    """E.164 form of a possible phone number, read in `region` when it has no country code.

    Cached: parsing costs more than the rest of a call's validation, and callers call again (one
    call per target of a session). 65,536 entries are a few megabytes.
    """
    try:
        number = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException:
        raise InvalidMobile(value) from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidMobile(value)
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def mobile_filter(values: Sequence[str], region: str, *, name: str) -> list[str]:
    """Numbers someone filters by (any format the intake takes), in E.164; one that is no
    possible number is `InvalidInput` naming the filter: the same answer from the API, the CLI
    and the console."""
    found = []
    for value in values:
        try:
            found.append(e164(value, region))
        except InvalidMobile:
            raise InvalidInput({name: [f"{value!r} is not a possible phone number."]}) from None
    return found
