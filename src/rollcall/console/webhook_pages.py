"""The console's Webhooks page: the endpoints with their health and recent failures; adding one
(its secret shown once), sending it a test event, retrying a delivery, disabling, enabling,
rotating the secret, removing. The same service functions as `/api/v3/webhooks`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Path, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from rollcall.api import MAX_ID
from rollcall.console.rendering import SHOWN_WHOLE, Form, Notice, Staff, back_to, console_router, page_of, render
from rollcall.db import BIGINT_MAX
from rollcall.errors import InvalidInput
from rollcall.paging import PageRequest
from rollcall.services import services_of
from rollcall.webhooks import endpoints
from rollcall.webhooks.models import OPERATOR_DISABLED, SUBSCRIBABLE
from rollcall.webhooks.troubled import Troubled

router = console_router()
RECENT_FAILURES = 5  # shown under each endpoint; its page lists them all

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
T = TypeVar("T")


async def _writing(request: Request, change: Callable[[Session], T]) -> T:
    database = services_of(request).database

    def run() -> T:
        with database.writing() as session:
            return change(session)

    return await run_in_threadpool(run)


def _endpoints_page(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
    with services_of(request).database.reading() as session:
        webhooks = endpoints.list_webhooks(session, PageRequest(limit=SHOWN_WHOLE)).items
        total = endpoints.count_webhooks(session) if len(webhooks) == SHOWN_WHOLE else len(webhooks)
        shapes = endpoints.shapes(session, webhooks)
        failures = {
            webhook.id: endpoints.list_deliveries(
                session, webhook.id, PageRequest(limit=RECENT_FAILURES), only=Troubled.FAILING
            ).items
            for webhook in webhooks
        }
    return render(
        request,
        "webhooks.html",
        status_code,
        webhooks=shapes,
        total=total,
        failures=failures,
        subscribable=[kind.value for kind in SUBSCRIBABLE],
        operator_disabled=OPERATOR_DISABLED,
        **context,
    )


@router.get("/webhooks")
def webhooks_page(request: Request, session: Staff) -> HTMLResponse:
    return _endpoints_page(request)


@router.post("/webhooks")
async def add_webhook(request: Request, session: Staff, form: Form) -> Response:
    """The answer is a page, not a redirect: it shows the secret, which must not travel in a URL."""
    settings = services_of(request).settings
    url = str(form.get("url") or "").strip()
    events = [str(kind) for kind in form.getlist("events")]
    description = str(form.get("description") or "").strip() or None
    try:
        webhook, secret = await _writing(
            request,
            lambda db: endpoints.create_webhook(db, url=url, events=events, description=description, settings=settings),
        )
    except InvalidInput as invalid:
        problems = [message for messages in invalid.fields.values() for message in messages]
        sent = {"url": url, "events": events, "description": description}
        return _endpoints_page(request, 422, sent=sent, problems=problems)
    return _endpoints_page(request, 201, secret=secret, secret_for=webhook.id, new=True)


@router.post("/webhooks/{webhook_id}/rotate-secret")
async def rotate_secret(request: Request, session: Staff, form: Form, webhook_id: Id) -> Response:
    webhook, secret = await _writing(request, lambda db: endpoints.rotate_secret(db, webhook_id))
    return _endpoints_page(request, secret=secret, secret_for=webhook.id, new=False)


@router.post("/webhooks/{webhook_id}/enabled")
async def enable_webhook(request: Request, session: Staff, form: Form, webhook_id: Id) -> Response:
    """`enabled=true` or `false`: enabling again clears why it was disabled."""
    enabled = form.get("enabled") == "true"
    settings = services_of(request).settings
    await _writing(request, lambda db: endpoints.update_webhook(db, webhook_id, {"enabled": enabled}, settings))
    notice = Notice.WEBHOOK_ENABLED if enabled else Notice.WEBHOOK_DISABLED
    return back_to(f"/console/webhooks#webhook-{webhook_id}", notice, webhook=webhook_id)


@router.post("/webhooks/{webhook_id}/test")
async def send_test_event(request: Request, session: Staff, form: Form, webhook_id: Id) -> Response:
    delivery = await _writing(request, lambda db: endpoints.send_test_event(db, webhook_id))
    return back_to(f"/console/webhooks/{webhook_id}", Notice.TEST_SENT, event=delivery.event_id)


@router.post("/webhooks/{webhook_id}/remove")
async def remove_webhook(request: Request, session: Staff, form: Form, webhook_id: Id) -> Response:
    await _writing(request, lambda db: endpoints.delete_webhook(db, webhook_id))
    return back_to("/console/webhooks", Notice.WEBHOOK_REMOVED, webhook=webhook_id)


@router.get("/webhooks/{webhook_id}")
def webhook_page(request: Request, session: Staff, webhook_id: Id, cursor: str | None = None) -> HTMLResponse:
    """One endpoint and its deliveries, newest first, each with its attempts."""
    with services_of(request).database.reading() as db:
        [shape] = endpoints.shapes(db, [endpoints.get_webhook(db, webhook_id)])
        deliveries = endpoints.list_deliveries(db, webhook_id, page_of(cursor))
    return render(request, "webhook.html", webhook=shape, page=deliveries)


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/retry")
async def retry_delivery(
    request: Request,
    session: Staff,
    form: Form,
    webhook_id: Id,
    delivery_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)],
) -> Response:
    await _writing(request, lambda db: endpoints.retry_delivery(db, webhook_id, delivery_id))
    return back_to(f"/console/webhooks/{webhook_id}", Notice.DELIVERY_RETRIED, delivery=delivery_id)
