"""`/api/v3/callpower/campaigns`: the CallPower campaigns seen, with their calls, the action each
maps to, and their defaults."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from rollcall.api import STAFF, Listing, One, errors, listing, one, page_request
from rollcall.callpower import campaigns
from rollcall.callpower.models import CallPowerCampaignDocument, DefaultsChange
from rollcall.callpower.record import MAX_CAMPAIGN_ID
from rollcall.paging import PageRequest
from rollcall.services import ServicesDep

router = APIRouter(prefix="/api/v3/callpower", dependencies=STAFF, tags=["CallPower calls"])

Paged = Annotated[PageRequest, Depends(page_request)]


@router.get(
    "/campaigns",
    response_model=Listing[CallPowerCampaignDocument],
    responses=errors(),
    description="Every CallPower campaign id seen, with its calls per state and the action it maps to.",
)
def list_callpower_campaigns(
    services: ServicesDep,
    page: Paged,
    mapped: Annotated[
        str | None, Query(alias="filter[mapped]", pattern=r"^(true|false)$", description="Only (un)mapped ones.")
    ] = None,
) -> dict[str, Any]:
    with services.database.reading() as session:
        found = campaigns.list_callpower_campaigns(session, page, mapped=None if mapped is None else mapped == "true")
        return listing(found, CallPowerCampaignDocument)


@router.get("/campaigns/{callpower_campaign_id}", response_model=One[CallPowerCampaignDocument], responses=errors(404))
def get_callpower_campaign(
    services: ServicesDep, callpower_campaign_id: Annotated[int, Path(ge=1, le=MAX_CAMPAIGN_ID)]
) -> dict[str, Any]:
    with services.database.reading() as session:
        summary = campaigns.get_callpower_campaign(session, callpower_campaign_id)
        return one(summary)


@router.patch(
    "/campaigns/{callpower_campaign_id}",
    response_model=One[CallPowerCampaignDocument],
    responses=errors(404),
    description="Set the campaign's defaults: from now on a call of it that lacks one of these fields is "
    "completed with the default (and says so in `defaulted`). Only the descriptive fields may have defaults "
    "(campaign_target_title, campaign_target_name, campaign_target_district, callpower_campaign_name, "
    "number_dialed_into); any other is 422. A field given null loses its default. Calls rejected before are "
    "not changed: `POST /api/v3/callpower/calls/revalidate` applies the defaults to them.",
)
def update_callpower_campaign(
    services: ServicesDep,
    callpower_campaign_id: Annotated[int, Path(ge=1, le=MAX_CAMPAIGN_ID)],
    change: DefaultsChange,
) -> dict[str, Any]:
    with services.database.writing() as session:
        campaigns.set_campaign_defaults(session, callpower_campaign_id, change.defaults.model_dump(exclude_unset=True))
        return one(campaigns.get_callpower_campaign(session, callpower_campaign_id))
