"""The operator console: server-rendered pages over the same service functions as the API."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.templating import Jinja2Templates

from rollcall.activity import service as activity
from rollcall.api import MAX_ID
from rollcall.callpower import repairs
from rollcall.callpower import service as calls
from rollcall.callpower.models import RETRYABLE_STATES, CallState
from rollcall.callpower.record import (
    CONTRACT_FIELDS,
    DEFAULTABLE_FIELDS,
    MAX_CAMPAIGN_ID,
    InvalidMobile,
    normalize_mobile,
    parse_integer,
)
from rollcall.console.session import ConsoleSession
from rollcall.credentials import matches
from rollcall.errors import Conflict, InvalidInput, NotFound, RollcallError
from rollcall.paging import PageRequest
from rollcall.times import iso_utc

templates = Jinja2Templates(directory=str(resources.files("rollcall") / "console" / "templates"))
PAGE_SIZE = 50


class SignInRequired(Exception):
    pass


class FormRefused(Exception):
    """A form without the session's CSRF token: forged, or from a page older than the session."""


def mask_mobile(mobile: str | None) -> str:
    """Lists show only the last four digits; a call's or a user's own page shows the number."""
    if not mobile:
        return ""
    return "•" * max(0, len(mobile) - 4) + mobile[-4:]


def ago(moment: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if moment is None:
        return "never"
    seconds = int(((now or dt.datetime.now(dt.UTC)) - moment).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def when(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


templates.env.filters.update(mask=mask_mobile, ago=ago, when=when, iso=iso_utc)
templates.env.globals.update(
    states=[state.value for state in CallState],
    retryable=[s.value for s in RETRYABLE_STATES],
    defaultable=DEFAULTABLE_FIELDS,
)


def _services(request: Request) -> Any:
    return request.app.state.services


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    session: ConsoleSession = getattr(request.state, "console_session", None) or _services(
        request
    ).console_sessions.load(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "signed_in": session.staff is not None,
            "flash": request.query_params.get("done"),
            **context,
        },
        status_code=status_code,
    )
    _services(request).console_sessions.save(request, response, session)
    return response


def back_to(path: str, message: str | None = None) -> RedirectResponse:
    """See other: `path` (which may end in a #fragment), saying `message` there."""
    path, hash_, fragment = path.partition("#")
    if message:
        path += ("&" if "?" in path else "?") + urlencode({"done": message})
    return RedirectResponse(path + hash_ + fragment, 303)


class ConsoleRoute(APIRoute):
    """Console errors as pages: sign-in redirects, refused forms, unknown ids, refused changes."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/console/sign-in?next={quote(target)}", 303)
            except FormRefused:
                return render(
                    request,
                    "error.html",
                    403,
                    title="Form refused",
                    message="This form was not sent from this console session (or the page was too old). "
                    "Reload the page and try again.",
                )
            except NotFound as error:
                return render(request, "error.html", 404, title="Not found", message=str(error))
            except InvalidInput as error:
                problems = "; ".join(m for messages in error.fields.values() for m in messages)
                return render(request, "error.html", 422, title="Not done", message=problems)
            except (Conflict, RollcallError) as error:
                return render(request, "error.html", 409, title="Not done", message=str(error))

        return route


router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


def staff(request: Request) -> ConsoleSession:
    """Pages for signed-in staff only; anyone else is sent to the sign-in page."""
    services = _services(request)
    session = services.console_sessions.load(request)
    request.state.console_session = session
    if not session.signed_in(services.admin_tokens):
        raise SignInRequired()
    return session


async def checked_form(request: Request) -> FormData:
    """A posted form, accepted only with this session's CSRF token."""
    session = _services(request).console_sessions.load(request)
    request.state.console_session = session
    form = await request.form()
    if not session.csrf_matches(form.get("csrf_token")):
        raise FormRefused()
    return form


Staff = Annotated[ConsoleSession, Depends(staff)]
Form = Annotated[FormData, Depends(checked_form)]


# -- signing in and out ---------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/console") and not target.startswith("//") else "/console/"


@router.get("/sign-in")
def sign_in_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "sign_in.html", next=_safe_next(next))


@router.post("/sign-in")
async def sign_in(request: Request, form: Form) -> Response:
    services = _services(request)
    token = str(form.get("token") or "").strip()
    if not matches(token, services.admin_tokens):
        return render(request, "sign_in.html", 401, next=_safe_next(str(form.get("next") or "")), failed=True)
    session = request.state.console_session.signing_in(token)
    request.state.console_session = session
    response = RedirectResponse(_safe_next(str(form.get("next") or "")), 303)
    services.console_sessions.save(request, response, session)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, form: Form) -> Response:
    session = request.state.console_session.signed_out()
    response = RedirectResponse("/console/sign-in", 303)
    _services(request).console_sessions.save(request, response, session)
    return response


# -- overview -------------------------------------------------------------------------------


@router.get("/")
def overview_page(request: Request, session: Staff) -> HTMLResponse:
    services = _services(request)
    now = dt.datetime.now(dt.UTC)
    with services.database.reading() as db:
        summary = calls.overview(db, day_totals=services.day_totals)
        unmapped = calls.list_callpower_campaigns(db, PageRequest(limit=500), mapped=False).items
        rejected = summary.week[CallState.REJECTED]
        week_began = dt.datetime.combine(summary.days[-7].day, dt.time(), dt.UTC)
        reasons = calls.rejection_reasons(db, since=week_began) if rejected else {}
    peak = max([day.total for day in summary.days] + [1])
    common = max(reasons.items(), key=lambda item: item[1], default=None)
    return render(
        request,
        "overview.html",
        overview=summary,
        peak=peak,
        unmapped=unmapped,
        now=now,
        rejected=rejected,
        common_reason=common,
        reasons_sampled=min(rejected, calls.REASONS_SAMPLE),
    )


# -- CallPower campaigns --------------------------------------------------------------------


@router.get("/campaigns")
def campaigns_page(request: Request, session: Staff) -> HTMLResponse:
    with _services(request).database.reading() as db:
        unmapped = calls.list_callpower_campaigns(db, PageRequest(limit=500), mapped=False).items
        mapped = calls.list_callpower_campaigns(db, PageRequest(limit=500), mapped=True).items
        actions = activity.list_actions(db, PageRequest(limit=500)).items
        campaigns = activity.list_campaigns(db, PageRequest(limit=500)).items
    waiting = any(summary.calls["received"] for summary in unmapped + mapped)
    return render(
        request,
        "campaigns.html",
        unmapped=unmapped,
        mapped=mapped,
        free_actions=[a for a in actions if a.callpower_campaign_id is None],
        campaigns=campaigns,
        refresh=waiting and request.query_params.get("done"),
    )


@router.post("/campaigns/{callpower_campaign_id}/defaults")
async def campaign_defaults(
    request: Request, session: Staff, form: Form, callpower_campaign_id: Annotated[int, Path(ge=1, le=MAX_CAMPAIGN_ID)]
) -> Response:
    """Every defaultable field is on the form: a filled one sets its default, an empty one removes it."""
    services = _services(request)
    changes = {name: (str(form.get(name) or "").strip() or None) for name in DEFAULTABLE_FIELDS}

    def save() -> None:
        with services.database.writing() as db:
            repairs.set_campaign_defaults(db, callpower_campaign_id, changes)

    await run_in_threadpool(save)
    return back_to(
        f"/console/campaigns#callpower-{callpower_campaign_id}",
        f"Defaults of CallPower campaign {callpower_campaign_id} saved; they complete its calls from now on.",
    )


@router.post("/campaigns/{callpower_campaign_id}/revalidate")
async def revalidate_campaign(
    request: Request, session: Staff, form: Form, callpower_campaign_id: Annotated[int, Path(ge=1, le=MAX_CAMPAIGN_ID)]
) -> Response:
    services = _services(request)
    done = await run_in_threadpool(
        repairs.revalidate_calls, services.database, callpower_campaign_id, region=services.settings.default_region
    )
    message = f"{done.revalidated} rejected call{'s' if done.revalidated != 1 else ''} now pass"
    if done.duplicates:
        message += f" ({done.duplicates} of them already stored)"
    message += f"; {done.still_rejected} still rejected."
    return back_to(f"/console/campaigns#callpower-{callpower_campaign_id}", message)


@router.post("/campaigns/{callpower_campaign_id}/map")
async def map_campaign(
    request: Request, session: Staff, form: Form, callpower_campaign_id: Annotated[int, Path(ge=1, le=MAX_CAMPAIGN_ID)]
) -> Response:
    """Map to an existing action, or create the campaign and its action in one step."""
    services = _services(request)
    action_field = str(form.get("action_id") or "").strip()
    title = str(form.get("campaign_title") or "").strip()
    name = str(form.get("action_name") or "").strip()

    def mapping() -> tuple[int, int]:
        with services.database.writing() as db:
            if action_field:
                action_id = parse_integer(action_field, minimum=1, maximum=MAX_ID)
            else:
                if not title or not name:
                    raise InvalidInput(
                        {"action_id": ["Choose an action, or give a campaign title and an action name."]}
                    )
                campaign = activity.create_campaign(db, internal_title=title)
                action_id = activity.create_action(db, campaign_id=campaign.id, name=name).id
            action, released = calls.map_campaign(db, action_id, callpower_campaign_id)
            return action.id, released

    try:
        action_id, released = await run_in_threadpool(mapping)
    except (TypeError, ValueError):
        raise InvalidInput({"action_id": ["Choose an action from the list."]}) from None
    return back_to(
        "/console/campaigns",
        f"CallPower campaign {callpower_campaign_id} now feeds action {action_id}; "
        f"{released} waiting call{'s' if released != 1 else ''} sent to the importer.",
    )


# -- calls ----------------------------------------------------------------------------------


def _page(cursor: str | None) -> PageRequest:
    return PageRequest(limit=PAGE_SIZE, cursor=cursor)


@router.get("/calls")
def calls_page(
    request: Request,
    session: Staff,
    state: Annotated[str | None, Query(pattern=r"^(|" + "|".join(s.value for s in CallState) + ")$")] = None,
    campaign: Annotated[str | None, Query(max_length=20)] = None,
    mobile: Annotated[str | None, Query(max_length=40)] = None,
    cursor: str | None = None,
) -> HTMLResponse:
    services = _services(request)
    states = [CallState(state)] if state else None
    campaign_ids = None
    if campaign and campaign.strip():
        try:
            campaign_ids = [parse_integer(campaign.strip(), minimum=1, maximum=MAX_CAMPAIGN_ID)]
        except (TypeError, ValueError):
            raise InvalidInput({"campaign": ["The CallPower campaign must be a number."]}) from None
    mobiles = None
    if mobile and mobile.strip():
        try:
            mobiles = [normalize_mobile(mobile, services.settings.default_region)]
        except InvalidMobile:
            raise InvalidInput({"mobile": [f"{mobile!r} is not a possible phone number."]}) from None
    with services.database.reading() as db:
        page = calls.list_calls(db, _page(cursor), states=states, callpower_campaign_ids=campaign_ids, mobiles=mobiles)
    filters = {"state": state or "", "campaign": campaign or "", "mobile": mobile or ""}
    return render(request, "calls.html", page=page, filters=filters, query=urlencode(filters))


def _form_value(value: Any) -> str:
    """A received field as an input shows it."""
    return "" if value is None else value if isinstance(value, str) else orjson.dumps(value).decode()


def _call_page(
    request: Request, call: Any, status_code: int = 200, sent: dict[str, str] | None = None, problems: Any = None
) -> HTMLResponse:
    received = repairs.received_payload(call) if call.state == CallState.REJECTED else None
    fields = {name: _form_value((received or {}).get(name)) for name in CONTRACT_FIELDS}
    return render(
        request,
        "call.html",
        status_code,
        call=call,
        record=call.document(),
        repair_fields={**fields, **(sent or {})},
        repair_problems=problems or {},
        unreadable=call.state == CallState.REJECTED and received is None,
    )


@router.get("/calls/{call_id}")
def call_page(request: Request, session: Staff, call_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> HTMLResponse:
    with _services(request).database.reading() as db:
        call = calls.get_call(db, call_id)
    return _call_page(request, call)


@router.post("/calls/{call_id}/repair")
async def repair_call(
    request: Request, session: Staff, form: Form, call_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Response:
    """The repair form shows every field as received: what the operator changed is the repair."""
    services = _services(request)
    sent = {name: str(form.get(name) or "") for name in CONTRACT_FIELDS}

    def repair() -> Any:
        with services.database.writing() as db:
            call = calls.get_call(db, call_id)
            received = repairs.received_payload(call) or {}
            changed = {
                name: (value if value.strip() else None)
                for name, value in sent.items()
                if value.strip() != _form_value(received.get(name)).strip()
            }
            if not changed:
                raise InvalidInput({"fields": ["Nothing was changed: correct a field first."]})
            return repairs.repair_call(db, call_id, changed, region=services.settings.default_region)

    try:
        call = await run_in_threadpool(repair)
    except InvalidInput as invalid:
        with services.database.reading() as db:
            call = calls.get_call(db, call_id)
        return _call_page(request, call, 422, sent, invalid.fields)
    outcome = (
        f"the same call as call {call.duplicate_of}, which is stored already"
        if call.state == CallState.DUPLICATE
        else "sent to the importer"
    )
    return back_to(f"/console/calls/{call_id}", f"Repaired: {outcome}.")


@router.post("/calls/{call_id}/retry")
async def retry_call(
    request: Request, session: Staff, form: Form, call_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Response:
    services = _services(request)

    def retry() -> None:
        with services.database.writing() as db:
            calls.retry_call(db, call_id)

    await run_in_threadpool(retry)
    return back_to(f"/console/calls/{call_id}", "Sent back to the importer.")


@router.post("/calls/retry")
async def retry_calls(request: Request, session: Staff, form: Form) -> Response:
    services = _services(request)
    try:
        state = CallState(str(form.get("state") or ""))
    except ValueError:
        raise InvalidInput({"state": ["Choose failed, dead or unmapped."]}) from None

    def retry() -> int:
        with services.database.writing() as db:
            return calls.retry_calls(db, state)

    count = await run_in_threadpool(retry)
    return back_to(f"/console/calls?state={state.value}", f"{count} {state.value} calls sent back to the importer.")


# -- posts, signups, users --------------------------------------------------------------------


@router.get("/posts")
def posts_page(
    request: Request,
    session: Staff,
    campaign_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    cursor: str | None = None,
) -> HTMLResponse:
    with _services(request).database.reading() as db:
        campaigns = activity.list_campaigns(db, PageRequest(limit=500)).items
        chosen = campaign_id or (campaigns[0].id if campaigns else None)
        page = activity.list_posts(db, _page(cursor), campaign_ids=[chosen] if chosen else [])
        mobiles = activity.mobiles_of_users(db, {post.northstar_id for post in page.items})
    return render(request, "posts.html", campaigns=campaigns, chosen=chosen, page=page, mobiles=mobiles)


CSV_COLUMNS = (
    "post_id",
    "created_at",
    "call_timestamp",
    "status",
    "quantity",
    "type",
    "action",
    "action_id",
    "northstar_id",
    "call_id",
    "status_details",
    "call_duration",
    "campaign_target_name",
    "campaign_target_title",
    "campaign_target_district",
    "callpower_campaign_name",
    "number_dialed_into",
)


@router.get("/campaigns/{campaign_id}/posts.csv")
def posts_csv(request: Request, session: Staff, campaign_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    database = _services(request).database
    with database.reading() as db:
        activity.get_campaign(db, campaign_id)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        cursor = None
        while True:
            with database.reading() as db:
                page = activity.list_posts(db, PageRequest(limit=1000, cursor=cursor), campaign_ids=[campaign_id])
            for post in page.items:
                details = post.details or {}
                writer.writerow(
                    [
                        post.id,
                        iso_utc(post.created_at),
                        iso_utc(post.call_timestamp),
                        post.status,
                        post.quantity,
                        post.type,
                        post.action,
                        post.action_id,
                        post.northstar_id,
                        post.call_id,
                        *(details.get(key) for key in CSV_COLUMNS[10:]),
                    ]
                )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            cursor = page.next
            if cursor is None:
                return

    filename = f"campaign-{campaign_id}-posts.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/users/{user_id}")
def user_page(
    request: Request, session: Staff, user_id: Annotated[str, Path(pattern=r"^[0-9a-f]{1,64}$")]
) -> HTMLResponse:
    with _services(request).database.reading() as db:
        user = activity.get_user(db, user_id)
        signups = activity.list_signups(db, PageRequest(limit=100), northstar_ids=[user_id]).items
        posts = activity.list_posts(db, PageRequest(limit=PAGE_SIZE), northstar_ids=[user_id]).items
    return render(request, "user.html", user=user, signups=signups, posts=posts)


@router.get("/signups/{signup_id}")
def signup_page(request: Request, session: Staff, signup_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> HTMLResponse:
    with _services(request).database.reading() as db:
        signup = activity.get_signup(db, signup_id)
        posts = activity.posts_of_signups(db, [signup_id])[signup_id]
    return render(request, "signup.html", signup=signup, posts=posts)


@router.get("/posts/{post_id}")
def post_page(request: Request, session: Staff, post_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> HTMLResponse:
    with _services(request).database.reading() as db:
        post = activity.get_post(db, post_id)
    return render(request, "post.html", post=post)
