"""The domain's errors. Each interface (HTTP, CLI) turns them into its own shape in one place."""

from __future__ import annotations


class RollcallError(Exception):
    """Something the user of an interface asked for cannot be done; the message says why."""


class NotFound(RollcallError):
    def __init__(self, kind: str, identifier: object) -> None:
        super().__init__(f"No {kind} with id {identifier}.")
        self.kind = kind
        self.identifier = identifier


class Conflict(RollcallError):
    """The request collides with what is stored (a unique value already taken, a wrong state)."""


class InvalidInput(RollcallError):
    """Input that breaks a rule; `fields` maps each field to its problems (the 422 shape)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("; ".join(message for messages in fields.values() for message in messages))
        self.fields = fields


class Unauthorized(RollcallError):
    """No credential, or a wrong one."""

    def __init__(self) -> None:
        super().__init__("Unauthorized.")
