"""`/api/v3/callpower`: the stored calls, the CallPower campaigns seen, and retries."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from rollcall.api import INTEGER_LIST, MAX_ID, STAFF, Listing, One, errors, integers, listing, one, page_request, texts
from rollcall.callpower import calls, campaigns, operations, repairs
from rollcall.callpower.models import (
    RETRYABLE_STATES,
    CallDocument,
    CallPowerCampaignDocument,
    CallState,
    DefaultsChange,
    RepairRequest,
    Retried,
    Revalidated,
)
from rollcall.callpower.record import MAX_CAMPAIGN_ID
from rollcall.paging import PageRequest
from rollcall.services import ServicesDep

router = APIRouter(prefix="/api/v3/callpower", dependencies=STAFF, tags=["CallPower calls"])

Paged = Annotated[PageRequest, Depends(page_request)]
STATES = "|".join(state.value for state in CallState)
RETRYABLE = "|".join(state.value for state in RETRYABLE_STATES)


def _states(value: str | None) -> list[CallState] | None:
    return [CallState(state) for state in texts(value) or []] if value is not None else None


@router.get("/calls", response_model=Listing[CallDocument], responses=errors())
def list_calls(
    services: ServicesDep,
    page: Paged,
    state: Annotated[
        str | None, Query(alias="filter[state]", pattern=rf"^({STATES})(,({STATES}))*$", description="Any of these.")
    ] = None,
    callpower_campaign_id: Annotated[
        str | None, Query(alias="filter[callpower_campaign_id]", pattern=INTEGER_LIST)
    ] = None,
) -> dict[str, Any]:
    with services.database.reading() as session:
        found = calls.list_calls(
            session,
            page,
            states=_states(state),
            callpower_campaign_ids=integers("filter[callpower_campaign_id]", callpower_campaign_id),
        )
        return listing(found, CallDocument)


@router.get("/calls/{call_id}", response_model=One[CallDocument], responses=errors(404))
def get_call(services: ServicesDep, call_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> dict[str, Any]:
    with services.database.reading() as session:
        return one(CallDocument.model_validate(calls.get_call(session, call_id)))


@router.post(
    "/calls/retry",
    response_model=One[Retried],
    responses=errors(),
    description="Send every call in the given state (failed, dead or unmapped) back to the importer.",
)
def retry_calls(
    services: ServicesDep,
    state: Annotated[str, Query(alias="filter[state]", pattern=rf"^({RETRYABLE})$")],
) -> dict[str, Any]:
    with services.database.writing() as session:
        return one({"retried": operations.retry_calls(session, CallState(state))})


@router.post(
    "/calls/{call_id}/retry",
    response_model=One[CallDocument],
    responses=errors(404, 409),
    description="Send one failed, dead or unmapped call back to the importer; other states are 409.",
)
def retry_call(services: ServicesDep, call_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> dict[str, Any]:
    with services.database.writing() as session:
        return one(CallDocument.model_validate(operations.retry_call(session, call_id)))


@router.post(
    "/calls/revalidate",
    response_model=One[Revalidated],
    responses=errors(),
    description="Run a CallPower campaign's rejected calls through the validator again, with its defaults "
    "as they are now; those that pass are imported (or recognised as a call stored before).",
)
async def revalidate_calls(
    services: ServicesDep,
    callpower_campaign_id: Annotated[
        int, Query(alias="filter[callpower_campaign_id]", ge=1, le=MAX_CAMPAIGN_ID, description="One campaign.")
    ],
) -> dict[str, Any]:
    done = await run_in_threadpool(
        repairs.revalidate_calls, services.database, callpower_campaign_id, region=services.settings.default_region
    )
    return one(asdict(done))


@router.post(
    "/calls/{call_id}/repair",
    response_model=One[CallDocument],
    responses=errors(404, 409),
    description="Correct a rejected call: the body as received, with these fields laid over it (null removes "
    "one), goes through the intake's validation. Still invalid: 422 naming the fields, and the call stays "
    "rejected. Valid: it is imported like any other (or, equal to a call stored before, becomes a `duplicate` "
    "of it). Only rejected calls can be repaired (409). The correction and its time are kept in `repairs`.",
)
def repair_call(
    services: ServicesDep, call_id: Annotated[int, Path(ge=1, le=MAX_ID)], repair: RepairRequest
) -> dict[str, Any]:
    with services.database.writing() as session:
        fields = repair.fields.model_dump(exclude_unset=True)
        call = repairs.repair_call(session, call_id, fields, region=services.settings.default_region)
        return one(CallDocument.model_validate(call))


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
        return one(CallPowerCampaignDocument.model_validate(summary))


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
        return one(
            CallPowerCampaignDocument.model_validate(campaigns.get_callpower_campaign(session, callpower_campaign_id))
        )
