"""How the console draws its pages: templates and their filters, the signed-in staff and CSRF
checks every page and form goes through, and console errors shown as pages."""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from rollcall.callpower.record import DEFAULTABLE_FIELDS, FIELD_LABELS
from rollcall.calls.models import RETRYABLE_STATES, CallState
from rollcall.errors import Conflict, InvalidInput, NotFound, RollcallError
from rollcall.paging import PageRequest
from rollcall.services import services_of
from rollcall.sessions import ConsoleSession
from rollcall.times import iso_utc

templates = Jinja2Templates(directory=str(resources.files("rollcall") / "console" / "templates"))
PAGE_SIZE = 50
# A list a page shows whole (what a form chooses from, what needs an operator): at most this many,
# and the page says "the first 500 of N" when there are more.
SHOWN_WHOLE = 500


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


def way_back(request: Request) -> str | None:
    """The console page the person came from (its Referer, when it is this console's), for a
    "Back" link that needs no script."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc or not referer.path.startswith("/console"):
        return None
    return referer.path + (f"?{referer.query}" if referer.query else "")


def share(part: float, whole: float) -> str:
    """`part` as a whole percentage of `whole` ("71%"; "–" of nothing)."""
    return f"{round(100 * part / whole)}%" if whole else "–"


def label(field: str) -> str:
    """A call record's field as people read it ("Target's title" for `campaign_target_title`)."""
    return FIELD_LABELS.get(field, field.replace("_", " "))


def target(details: dict[str, Any] | None) -> str:
    """Whom a call reached, to read: "Jane Doe, Senator (FL-7)"."""
    found = details or {}
    who = ", ".join(str(found[key]) for key in ("campaign_target_name", "campaign_target_title") if found.get(key))
    district = found.get("campaign_target_district")
    return f"{who} ({district})" if who and district else who or str(district or "")


def duration(seconds: float) -> str:
    """A length of time to read: "45 s", "4 min 05 s", "12 h 03 min"."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours:,} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


templates.env.filters.update(
    mask=mask_mobile, ago=ago, when=when, iso=iso_utc, share=share, duration=duration, target=target, label=label
)
templates.env.globals.update(
    states=[state.value for state in CallState],
    retryable=[s.value for s in RETRYABLE_STATES],
    defaultable=DEFAULTABLE_FIELDS,
    way_back=way_back,
)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class Notice(enum.StrEnum):
    """What a page says after a change (`?done=<code>`, with its values as `done_<name>`): only
    these sentences, written here; a value is a number or a plain word, never text to show."""

    DEFAULTS_SAVED = "defaults-saved"
    REVALIDATED = "revalidated"
    MAPPED = "mapped"
    REPAIRED = "repaired"
    REPAIRED_DUPLICATE = "repaired-duplicate"
    RETRIED = "retried"
    RETRIED_ALL = "retried-all"
    ERASED = "erased"
    WEBHOOK_ENABLED = "webhook-enabled"
    WEBHOOK_DISABLED = "webhook-disabled"
    TEST_SENT = "test-sent"
    WEBHOOK_REMOVED = "webhook-removed"
    DELIVERY_RETRIED = "delivery-retried"
    SESSIONS_ENDED = "sessions-ended"
    TIMEZONE_SAVED = "timezone-saved"


_NOTICES: dict[Notice, Callable[[dict[str, Any]], str]] = {
    Notice.DEFAULTS_SAVED: lambda v: (
        f"Defaults of CallPower campaign {v['campaign']} saved; they complete its calls from now on."
    ),
    Notice.REVALIDATED: lambda v: (
        f"{_plural(v['passed'], 'rejected call')} now pass"
        + (f" ({v['duplicates']} of them already stored)" if v["duplicates"] else "")
        + f"; {v['still']} still rejected."
    ),
    Notice.MAPPED: lambda v: (
        f"CallPower campaign {v['campaign']} now feeds action {v['action']}; "
        f"{_plural(v['released'], 'waiting call')} sent to the importer."
    ),
    Notice.REPAIRED: lambda v: "Repaired: sent to the importer.",
    Notice.REPAIRED_DUPLICATE: lambda v: f"Repaired: the same call as call {v['call']}, which is stored already.",
    Notice.RETRIED: lambda v: "Sent back to the importer.",
    Notice.RETRIED_ALL: lambda v: f"{v['calls']} {v['state']} calls sent back to the importer.",
    Notice.ERASED: lambda v: (
        f"User {v['user']} erased: {v['signups']} signups and {v['posts']} posts removed,"
        f" {v['calls']} stored calls scrubbed."
    ),
    Notice.WEBHOOK_ENABLED: lambda v: f"Webhook {v['webhook']} enabled: deliveries resume.",
    Notice.WEBHOOK_DISABLED: lambda v: f"Webhook {v['webhook']} disabled: nothing is sent to it until it is enabled.",
    Notice.TEST_SENT: lambda v: f"Test event {v['event']} is on its way; its delivery appears below.",
    Notice.WEBHOOK_REMOVED: lambda v: f"Webhook {v['webhook']} removed, with its deliveries.",
    Notice.DELIVERY_RETRIED: lambda v: f"Delivery {v['delivery']} is sent again now.",
    Notice.SESSIONS_ENDED: lambda v: f"{_plural(v['sessions'], 'console session')} ended: sign in again.",
    Notice.TIMEZONE_SAVED: lambda v: f"Campaign {v['campaign']}'s time zone saved: its results are shown in it.",
}
_NOTICE_VALUE = re.compile(r"[0-9A-Za-z_]{1,64}")


def notice_of(query: Mapping[str, str]) -> str | None:
    """The sentence a page's `?done=` names, with its values; None for anything else."""
    try:
        notice = Notice(query.get("done", ""))
    except ValueError:
        return None
    values: dict[str, Any] = {}
    for name, value in query.items():
        if name.startswith("done_"):
            if not _NOTICE_VALUE.fullmatch(value):
                return None
            values[name.removeprefix("done_")] = int(value) if value.isdigit() else value
    try:
        return _NOTICES[notice](values)
    except (KeyError, TypeError):  # a value missing, or a word where a count belongs
        return None


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    session: ConsoleSession = getattr(request.state, "console_session", None) or services_of(
        request
    ).console_sessions.load(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "signed_in": session.staff is not None,
            "flash": notice_of(request.query_params),
            **context,
        },
        status_code=status_code,
    )
    services_of(request).console_sessions.save(request, response, session)
    return response


def back_to(path: str, notice: Notice, **values: int | str | None) -> RedirectResponse:
    """See other: `path` (which may end in a #fragment), saying `notice` there."""
    path, hash_, fragment = path.partition("#")
    query = {"done": notice.value, **{f"done_{name}": str(value) for name, value in values.items()}}
    path += ("&" if "?" in path else "?") + urlencode(query)
    return RedirectResponse(path + hash_ + fragment, 303)


_TITLES = {403: "Form refused", 404: "Not found", 405: "Not found", 409: "Not done", 422: "Not done"}


def error_page(request: Request, status: int, message: str, fields: Mapping[str, list[str]]) -> Response | None:
    """A console error as a page with the navigation and a way back (None outside the console:
    the API answers in the house shape)."""
    if not (request.url.path == "/console" or request.url.path.startswith("/console/")):
        return None
    if fields:
        message = "; ".join(f"{name}: {problem}" for name, problems in fields.items() for problem in problems)
    elif status in (404, 405):
        message = "There is no such page in the console."
    return render(
        request, "error.html", 404 if status == 405 else status, title=_TITLES.get(status, "Error"), message=message
    )


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
            except RequestValidationError as error:  # a path or query parameter the route cannot take
                problems = "; ".join(
                    f"{problem['loc'][-1]}: {problem['msg']}" if problem.get("loc") else str(problem.get("msg"))
                    for problem in error.errors()
                )
                return render(request, "error.html", 422, title="Not done", message=problems)

        return route


def console_router() -> APIRouter:
    """A router of console pages (each module of pages has its own)."""
    return APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


def page_of(cursor: str | None) -> PageRequest:
    return PageRequest(limit=PAGE_SIZE, cursor=cursor)


def staff(request: Request) -> ConsoleSession:
    """Pages for signed-in staff only; anyone else is sent to the sign-in page."""
    services = services_of(request)
    session = services.console_sessions.load(request)
    request.state.console_session = session
    if not session.signed_in(services.admin_tokens):
        raise SignInRequired()
    return session


async def checked_form(request: Request) -> FormData:
    """A posted form, accepted only with this session's CSRF token."""
    session: ConsoleSession | None = getattr(request.state, "console_session", None)  # `staff` read it
    if session is None:
        session = await run_in_threadpool(services_of(request).console_sessions.load, request)
        request.state.console_session = session
    form = await request.form()
    if not session.csrf_matches(form.get("csrf_token")):
        raise FormRefused()
    return form


Staff = Annotated[ConsoleSession, Depends(staff)]
Form = Annotated[FormData, Depends(checked_form)]
