"""The console's pages of member activity: a campaign's posts and their CSV, one post, one
signup, one user."""

from __future__ import annotations

import concurrent.futures
import io
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlencode

import orjson
from fastapi import Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response, StreamingResponse

from rollcall import spreadsheets
from rollcall.activity import service as activity
from rollcall.activity.views import UserId
from rollcall.api import MAX_ID
from rollcall.console.rendering import (
    PAGE_SIZE,
    SHOWN_WHOLE,
    Form,
    Notice,
    Staff,
    back_to,
    console_router,
    page_of,
    render,
)
from rollcall.members import audit
from rollcall.members import service as members
from rollcall.paging import PageRequest
from rollcall.phones import mobile_filter
from rollcall.services import services_of
from rollcall.sessions import ConsoleSession

router = console_router()

# -- posts, signups, users --------------------------------------------------------------------


@router.get("/posts")
def posts_page(
    request: Request,
    session: Staff,
    campaign_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    cursor: str | None = None,
) -> HTMLResponse:
    with services_of(request).database.reading() as db:
        campaigns = activity.list_campaigns(db, PageRequest(limit=SHOWN_WHOLE)).items
        campaigns_total = activity.count_campaigns(db) if len(campaigns) == SHOWN_WHOLE else len(campaigns)
        chosen = campaign_id or (campaigns[0].id if campaigns else None)
        page = activity.list_posts(db, page_of(cursor), campaign_ids=[chosen] if chosen else [])
        mobiles = activity.mobiles_of_users(db, {post.northstar_id for post in page.items})
    return render(
        request,
        "posts.html",
        campaigns=campaigns,
        campaigns_total=campaigns_total,
        chosen=chosen,
        page=page,
        mobiles=mobiles,
    )


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


DETAIL_COLUMNS = CSV_COLUMNS[10:]  # from the post's details
CSV_PAGE = 2000  # posts read per transaction: the CSV goes out as it is read, memory stays flat


@router.get("/campaigns/{campaign_id}/posts.csv")
def posts_csv(request: Request, session: Staff, campaign_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    database = services_of(request).database
    with database.reading() as db:
        activity.get_campaign(db, campaign_id)

    def page(before: int | None) -> list[activity.ExportedPost]:
        with database.reading() as db:
            return activity.posts_for_export(db, campaign_id, before=before, limit=CSV_PAGE)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = spreadsheets.Writer(buffer)
        writer.writerow(CSV_COLUMNS)
        # The next page is read while this one is written: the database's time (one row read
        # per post, a campaign's posts lie all over the table) overlaps the writing's.
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rollcall-csv") as ahead:
            coming = ahead.submit(page, None)
            while True:
                posts = coming.result()
                if len(posts) == CSV_PAGE:
                    coming = ahead.submit(page, posts[-1].id)
                yield _csv_page(writer, buffer, posts)
                if len(posts) < CSV_PAGE:
                    return

    filename = f"campaign-{campaign_id}-posts.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _csv_page(writer: spreadsheets.Writer, buffer: io.StringIO, posts: list[activity.ExportedPost]) -> str:
    """A page of posts as CSV text (with the header row before the first)."""
    writer.writerows(
        [
            post.id,
            post.created_at,
            post.call_timestamp,
            post.status,
            post.quantity,
            post.type,
            post.action,
            post.action_id,
            post.northstar_id,
            post.call_id,
            *(post.details.get(key) for key in DETAIL_COLUMNS),
        ]
        for post in posts
    )
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


@router.get("/users")
def users_page(
    request: Request,
    session: Staff,
    mobile: Annotated[str | None, Query(max_length=40)] = None,
    cursor: str | None = None,
) -> HTMLResponse:
    """Members, newest first; a number in any format the intake takes finds its member."""
    services = services_of(request)
    mobiles = (
        mobile_filter([mobile], services.settings.default_region, name="mobile") if mobile and mobile.strip() else None
    )
    with services.database.reading() as db:
        page = activity.list_users(db, page_of(cursor), mobiles=mobiles)
    return render(request, "users.html", page=page, mobile=mobile or "", query=urlencode({"mobile": mobile or ""}))


@router.get("/users/{user_id}")
def user_page(request: Request, session: Staff, user_id: UserId) -> HTMLResponse:
    with services_of(request).database.reading() as db:
        user = activity.get_user(db, user_id)
        signups = activity.list_signups(db, PageRequest(limit=100), northstar_ids=[user_id]).items
        posts = activity.list_posts(db, PageRequest(limit=PAGE_SIZE), northstar_ids=[user_id]).items
        titles = activity.campaign_titles(db, {signup.campaign_id for signup in signups})
    return render(request, "user.html", user=user, signups=signups, posts=posts, titles=titles)


def _actor(session: ConsoleSession) -> str:
    """The signed-in staff member, as the audit log names them (`Staff` made sure there is one)."""
    assert session.staff is not None
    return audit.fingerprint_actor(session.staff)


@router.post("/users/{user_id}/erase")
async def erase_user(request: Request, session: Staff, form: Form, user_id: UserId) -> Response:
    """The erase button (its form asks for confirmation first): the same use case as the API's."""
    erased = await run_in_threadpool(members.erase, services_of(request).database, user_id, _actor(session))
    return back_to(
        "/console/", Notice.ERASED, user=user_id, signups=erased.signups, posts=erased.posts, calls=erased.calls
    )


@router.get("/users/{user_id}/export.json")
async def export_user(request: Request, session: Staff, user_id: UserId) -> Response:
    document = await run_in_threadpool(members.export, services_of(request).database, user_id, _actor(session))
    return Response(
        orjson.dumps(document, option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="user-{user_id}.json"'},
    )


@router.get("/audit")
def audit_page(request: Request, session: Staff, cursor: str | None = None) -> HTMLResponse:
    """Erasures and exports, newest first."""
    with services_of(request).database.reading() as db:
        page = audit.list_entries(db, page_of(cursor))
    return render(request, "audit.html", page=page)


@router.get("/signups/{signup_id}")
def signup_page(
    request: Request, session: Staff, signup_id: Annotated[int, Path(ge=1, le=MAX_ID)], cursor: str | None = None
) -> HTMLResponse:
    with services_of(request).database.reading() as db:
        signup = activity.get_signup(db, signup_id)
        # A page of its posts, not all: a member who calls every day has thousands.
        page = activity.list_posts(db, page_of(cursor), signup_ids=[signup_id])
    return render(request, "signup.html", signup=signup, page=page)


@router.get("/posts/{post_id}")
def post_page(request: Request, session: Staff, post_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> HTMLResponse:
    with services_of(request).database.reading() as db:
        post = activity.get_post(db, post_id)
    return render(request, "post.html", post=post)
