"""`/api/v3/callpower/calls`: the stored calls, their retries, repairs and revalidations (the
call pipeline's routes; the path keeps the name of the one source there is)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from rollcall.api import INTEGER_LIST, MAX_ID, STAFF, Listing, One, errors, integers, listing, one, page_request, texts
from rollcall.callpower.models import RepairRequest
from rollcall.callpower.record import MAX_CAMPAIGN_ID
from rollcall.calls import repairs, service
from rollcall.calls.models import RETRYABLE_STATES, CallDocument, CallState, Retried, Revalidated
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
        found = service.list_calls(
            session,
            page,
            states=_states(state),
            callpower_campaign_ids=integers("filter[callpower_campaign_id]", callpower_campaign_id),
        )
        return listing(found, CallDocument)


@router.get("/calls/{call_id}", response_model=One[CallDocument], responses=errors(404))
def get_call(services: ServicesDep, call_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> dict[str, Any]:
    with services.database.reading() as session:
        return one(CallDocument.model_validate(service.get_call(session, call_id)))


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
        return one({"retried": service.retry_calls(session, CallState(state))})


@router.post(
    "/calls/{call_id}/retry",
    response_model=One[CallDocument],
    responses=errors(404, 409),
    description="Send one failed, dead or unmapped call back to the importer; other states are 409.",
)
def retry_call(services: ServicesDep, call_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> dict[str, Any]:
    with services.database.writing() as session:
        return one(CallDocument.model_validate(service.retry_call(session, call_id)))


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
    done = await run_in_threadpool(repairs.revalidate_calls, services.database, callpower_campaign_id, services.source)
    return one(done)


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
        call = repairs.repair_call(session, call_id, fields, services.source)
        return one(CallDocument.model_validate(call))
