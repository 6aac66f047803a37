"""The operator console: signing in, the overview, the CallPower campaigns (mapping, defaults,
revalidation) and the stored calls (retry, repair). Server-rendered pages over the same service
functions as the API; posts, signups and users are in `activity_pages.py`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from fastapi import Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rollcall import metrics
from rollcall.activity import service as activity
from rollcall.api import MAX_ID, client_address
from rollcall.backups import schedule
from rollcall.callpower import campaigns
from rollcall.callpower.record import (
    CONTRACT_FIELDS,
    DEFAULTABLE_FIELDS,
    MAX_CAMPAIGN_ID,
    as_text,
    parse_integer,
)
from rollcall.calls import repairs, statistics
from rollcall.calls import service as calls
from rollcall.calls import service as operations
from rollcall.calls.models import CallDocument, CallState
from rollcall.console import charts
from rollcall.console.rendering import SHOWN_WHOLE, Form, Notice, Staff, back_to, console_router, page_of, render
from rollcall.credentials import matches
from rollcall.errors import InvalidInput
from rollcall.fields import required
from rollcall.limits import TooManyRequests
from rollcall.paging import PageRequest
from rollcall.phones import mobile_filter
from rollcall.reports import service as reports
from rollcall.services import services_of
from rollcall.webhooks import endpoints

router = console_router()
log = structlog.get_logger("rollcall.console")

# -- signing in and out ---------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/console") and not target.startswith("//") else "/console/"


@router.get("/sign-in")
def sign_in_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "sign_in.html", next=_safe_next(next))


@router.post("/sign-in")
async def sign_in(request: Request, form: Form) -> Response:
    services = services_of(request)
    address = client_address(request)
    next_page = _safe_next(str(form.get("next") or ""))
    try:
        services.token_throttle.check(address)
    except TooManyRequests as error:
        metrics.SIGN_IN_FAILURES.labels("throttled").inc()
        log.warning("console.sign_in_throttled", client=address, retry_after=error.retry_after)
        page = render(request, "sign_in.html", 429, next=next_page, wait=error.retry_after)
        page.headers["Retry-After"] = str(error.retry_after)
        return page
    token = str(form.get("token") or "").strip()
    if not matches(token, services.admin_tokens):
        services.token_throttle.failed(address)
        metrics.SIGN_IN_FAILURES.labels("wrong token").inc()
        log.warning("console.sign_in_failed", client=address)  # never the token tried
        return render(request, "sign_in.html", 401, next=next_page, failed=True)
    session = await run_in_threadpool(services.console_sessions.sign_in, token)
    request.state.console_session = session
    response = RedirectResponse(next_page, 303)
    services.console_sessions.save(request, response, session)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, form: Form) -> Response:
    """Ends this session on the server: its cookie opens nothing afterwards."""
    sessions = services_of(request).console_sessions
    session = await run_in_threadpool(sessions.sign_out, request.state.console_session)
    response = RedirectResponse("/console/sign-in", 303)
    sessions.save(request, response, session)
    return response


@router.post("/sessions/end-all")
async def end_all_sessions(request: Request, session: Staff, form: Form) -> Response:
    """Signs every console session out, this one included (a lost laptop, a token that leaked)."""
    sessions = services_of(request).console_sessions
    ended, count = await run_in_threadpool(sessions.end_all, session)
    response = back_to("/console/sign-in", Notice.SESSIONS_ENDED, sessions=count)
    sessions.save(request, response, ended)
    return response


# -- overview -------------------------------------------------------------------------------


@router.get("/")
def overview_page(request: Request, session: Staff) -> HTMLResponse:
    services = services_of(request)
    now = dt.datetime.now(dt.UTC)
    with services.database.reading() as db:
        summary = statistics.overview(db)
        unmapped = campaigns.count_callpower_campaigns(db, mapped=False)
        waiting_unmapped = statistics.count_calls_by_state(db)[CallState.UNMAPPED] if unmapped else 0
        rejected = summary.week[CallState.REJECTED]
        reasons = statistics.rejection_reasons(db, since=summary.days[-7].day) if rejected else {}
        disabled_webhooks = endpoints.disabled_by_rollcall(db)
        settings = services.settings
        offices = reports.unreachable(
            db, reports.Scope(), now=now, share=settings.unreachable_share, at_least=settings.unreachable_min_calls
        )
    chart = charts.stacked_bars(
        [
            {
                "day": day.day.isoformat(),
                "imported": day.calls["imported"],
                "not_imported": day.total - day.calls["imported"],
            }
            for day in summary.days
        ],
        ("imported", "not_imported"),
        "day",
    )
    common = max(reasons.items(), key=lambda item: item[1], default=None)
    # Defaults mend only a missing field that describes the target or campaign (not a body that
    # could not be read, nor a missing number or campaign).
    defaults_mend = common is not None and common[0] in {required(field) for field in DEFAULTABLE_FIELDS}
    backups = schedule.status(settings)
    return render(
        request,
        "overview.html",
        overview=summary,
        chart=chart,
        unmapped=unmapped,
        waiting_unmapped=waiting_unmapped,
        now=now,
        rejected=rejected,
        common_reason=common,
        defaults_mend=defaults_mend,
        disabled_webhooks=disabled_webhooks,
        offices=offices,
        backups=backups,
    )


# -- CallPower campaigns --------------------------------------------------------------------


CAMPAIGNS_PAGE = 25  # mapped campaigns per page: each has its forms, which cost the page its time


@router.get("/campaigns")
def campaigns_page(request: Request, session: Staff, cursor: str | None = None) -> HTMLResponse:
    """Those without an action first (all of them: each needs one), then those with one, a page
    at a time (their forms cost the page's time, not the database)."""
    with services_of(request).database.reading() as db:
        unmapped = campaigns.list_callpower_campaigns(db, PageRequest(limit=SHOWN_WHOLE), mapped=False).items
        unmapped_total = campaigns.count_callpower_campaigns(db, mapped=False) if len(unmapped) == SHOWN_WHOLE else 0
        page = campaigns.list_callpower_campaigns(db, PageRequest(CAMPAIGNS_PAGE, cursor), mapped=True)
        mapped = page.items
        free_actions = activity.list_actions(db, PageRequest(limit=SHOWN_WHOLE), unmapped=True).items
        actions_total = activity.count_actions(db, unmapped=True) if len(free_actions) == SHOWN_WHOLE else 0
    waiting = any(summary.calls["received"] for summary in unmapped + mapped)
    return render(
        request,
        "campaigns.html",
        unmapped=unmapped,
        unmapped_total=max(unmapped_total, len(unmapped)),
        mapped=mapped,
        page=page,
        free_actions=free_actions,
        actions_total=max(actions_total, len(free_actions)),
        refresh=waiting and request.query_params.get("done"),
    )


@router.post("/campaigns/{callpower_campaign_id}/defaults")
async def campaign_defaults(
    request: Request, session: Staff, form: Form, callpower_campaign_id: Annotated[int, Path(ge=1, le=MAX_CAMPAIGN_ID)]
) -> Response:
    """Every defaultable field is on the form: a filled one sets its default, an empty one removes it."""
    services = services_of(request)
    changes = {name: (str(form.get(name) or "").strip() or None) for name in DEFAULTABLE_FIELDS}

    def save() -> None:
        with services.database.writing() as db:
            campaigns.set_campaign_defaults(db, callpower_campaign_id, changes)

    await run_in_threadpool(save)
    return back_to(
        f"/console/campaigns#callpower-{callpower_campaign_id}", Notice.DEFAULTS_SAVED, campaign=callpower_campaign_id
    )


@router.post("/campaigns/{callpower_campaign_id}/revalidate")
async def revalidate_campaign(
    request: Request, session: Staff, form: Form, callpower_campaign_id: Annotated[int, Path(ge=1, le=MAX_CAMPAIGN_ID)]
) -> Response:
    services = services_of(request)
    done = await run_in_threadpool(repairs.revalidate_calls, services.database, callpower_campaign_id, services.source)
    return back_to(
        f"/console/campaigns#callpower-{callpower_campaign_id}",
        Notice.REVALIDATED,
        passed=done.revalidated,
        duplicates=done.duplicates,
        still=done.still_rejected,
    )


@router.post("/campaigns/{callpower_campaign_id}/map")
async def map_campaign(
    request: Request, session: Staff, form: Form, callpower_campaign_id: Annotated[int, Path(ge=1, le=MAX_CAMPAIGN_ID)]
) -> Response:
    """Map to an existing action, or create the campaign and its action in one step."""
    services = services_of(request)
    action_field = str(form.get("action_id") or "").strip()
    title = str(form.get("campaign_title") or "").strip()
    name = str(form.get("action_name") or "").strip()

    def mapping() -> tuple[int, int]:
        with services.database.writing() as db:
            if action_field:
                action_id = parse_integer(action_field, minimum=1, maximum=MAX_ID)
                action, released = operations.map_campaign(db, action_id, callpower_campaign_id)
            elif title and name:
                action, released = operations.add_campaign_for(
                    db, callpower_campaign_id, campaign_title=title, action_name=name
                )
            else:
                raise InvalidInput({"action_id": ["Choose an action, or give a campaign title and an action name."]})
            return action.id, released

    try:
        action_id, released = await run_in_threadpool(mapping)
    except (TypeError, ValueError):
        raise InvalidInput({"action_id": ["Choose an action from the list."]}) from None
    return back_to(
        "/console/campaigns", Notice.MAPPED, campaign=callpower_campaign_id, action=action_id, released=released
    )


# -- calls ----------------------------------------------------------------------------------


@router.get("/calls")
def calls_page(
    request: Request,
    session: Staff,
    state: Annotated[str | None, Query(pattern=r"^(|" + "|".join(s.value for s in CallState) + ")$")] = None,
    campaign: Annotated[str | None, Query(max_length=20)] = None,
    mobile: Annotated[str | None, Query(max_length=40)] = None,
    cursor: str | None = None,
) -> HTMLResponse:
    services = services_of(request)
    states = [CallState(state)] if state else None
    campaign_ids = None
    if campaign and campaign.strip():
        try:
            campaign_ids = [parse_integer(campaign.strip(), minimum=1, maximum=MAX_CAMPAIGN_ID)]
        except (TypeError, ValueError):
            raise InvalidInput({"campaign": ["The CallPower campaign must be a number."]}) from None
    mobiles = (
        mobile_filter([mobile], services.settings.default_region, name="mobile") if mobile and mobile.strip() else None
    )
    with services.database.reading() as db:
        page = calls.list_calls(
            db, page_of(cursor), states=states, callpower_campaign_ids=campaign_ids, mobiles=mobiles
        )
    filters = {"state": state or "", "campaign": campaign or "", "mobile": mobile or ""}
    return render(request, "calls.html", page=page, filters=filters, query=urlencode(filters))


def _call_page(
    request: Request, call: Any, status_code: int = 200, sent: dict[str, str] | None = None, problems: Any = None
) -> HTMLResponse:
    source = services_of(request).source
    received = source.read_back(call.raw, call.content_type) if call.state == CallState.REJECTED else None
    fields = {name: as_text((received or {}).get(name)) for name in CONTRACT_FIELDS}
    return render(
        request,
        "call.html",
        status_code,
        call=call,
        record=CallDocument.of(call),
        repair_fields={**fields, **(sent or {})},
        repair_problems=problems or {},
        unreadable=call.state == CallState.REJECTED and received is None,
        retention_days=f"{services_of(request).settings.call_body_retention_days or 0:g}",
    )


@router.get("/calls/{call_id}")
def call_page(request: Request, session: Staff, call_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> HTMLResponse:
    with services_of(request).database.reading() as db:
        call = calls.get_call(db, call_id)
    return _call_page(request, call)


@router.post("/calls/{call_id}/repair")
async def repair_call(
    request: Request, session: Staff, form: Form, call_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Response:
    """The repair form shows every field as received: what the operator changed is the repair."""
    services = services_of(request)
    sent = {name: str(form.get(name) or "") for name in CONTRACT_FIELDS}

    def repair() -> Any:
        with services.database.writing() as db:
            call = calls.get_call(db, call_id)
            received = services.source.read_back(call.raw, call.content_type) or {}
            changed = {
                name: (value if value.strip() else None)
                for name, value in sent.items()
                if value.strip() != as_text(received.get(name)).strip()
            }
            if not changed:
                raise InvalidInput({"fields": ["Nothing was changed: correct a field first."]})
            return repairs.repair_call(db, call_id, changed, services.source)

    try:
        call = await run_in_threadpool(repair)
    except InvalidInput as invalid:
        with services.database.reading() as db:
            call = calls.get_call(db, call_id)
        return _call_page(request, call, 422, sent, invalid.fields)
    if call.state == CallState.DUPLICATE:
        return back_to(f"/console/calls/{call_id}", Notice.REPAIRED_DUPLICATE, call=call.duplicate_of)
    return back_to(f"/console/calls/{call_id}", Notice.REPAIRED)


@router.post("/calls/{call_id}/retry")
async def retry_call(
    request: Request, session: Staff, form: Form, call_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Response:
    services = services_of(request)

    def retry() -> None:
        with services.database.writing() as db:
            operations.retry_call(db, call_id)

    await run_in_threadpool(retry)
    return back_to(f"/console/calls/{call_id}", Notice.RETRIED)


@router.post("/calls/retry")
async def retry_calls(request: Request, session: Staff, form: Form) -> Response:
    services = services_of(request)
    try:
        state = CallState(str(form.get("state") or ""))
    except ValueError:
        raise InvalidInput({"state": ["Choose failed, dead or unmapped."]}) from None

    def retry() -> int:
        with services.database.writing() as db:
            return operations.retry_calls(db, state)

    count = await run_in_threadpool(retry)
    return back_to(f"/console/calls?state={state.value}", Notice.RETRIED_ALL, calls=count, state=state.value)
