"""`/api/v3/users/{id}` erased or exported: a member's data, on their word (the audit log keeps
who did it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from rollcall.activity.views import UserId
from rollcall.api import STAFF, One, StaffActor, errors, one
from rollcall.members import service as members
from rollcall.members.service import Erased, MemberExport
from rollcall.services import ServicesDep

router = APIRouter(prefix="/api/v3", dependencies=STAFF)


@router.delete("/users/{user_id}", tags=["users"], response_model=One[Erased], responses=errors(404))
def erase_user(services: ServicesDep, user_id: UserId, actor: StaffActor) -> dict[str, Any]:
    """Erase a member: the user, their signups and posts are removed and their stored calls
    scrubbed, in one transaction; `user.erased` (the id only) goes to webhooks. Answers what
    was removed. Recorded in the audit log."""
    return one(members.erase(services.database, user_id, actor))


@router.get("/users/{user_id}/export", tags=["users"], response_model=MemberExport, responses=errors(404))
def export_user(services: ServicesDep, user_id: UserId, actor: StaffActor) -> dict[str, Any]:
    """Everything held about a member, in one document. Recorded in the audit log."""
    return members.export(services.database, user_id, actor)
