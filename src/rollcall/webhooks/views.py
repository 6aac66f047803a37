"""`/api/v3/events` (the feed, oldest first) and `/api/v3/webhooks` (endpoints, their
deliveries, retries, secret rotation, test events): parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from rollcall.api import MAX_ID, STAFF, Listing, One, errors, listing, one, page_request, texts
from rollcall.db import BIGINT_MAX
from rollcall.events import EventDocument, EventType, documents, event_number, list_events
from rollcall.paging import Page, PageRequest
from rollcall.services import ServicesDep
from rollcall.webhooks import endpoints
from rollcall.webhooks.models import (
    DeliveryDocument,
    NewWebhook,
    WebhookChanges,
    WebhookDocument,
    WebhookWithSecret,
)
from rollcall.webhooks.troubled import Troubled

router = APIRouter(prefix="/api/v3", dependencies=STAFF)

Paged = Annotated[PageRequest, Depends(page_request)]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
TYPES = "|".join(kind.value for kind in EventType)


@router.get(
    "/events",
    tags=["events"],
    response_model=Listing[EventDocument],
    responses=errors(),
    description="Everything that happened, oldest first. A consumer that remembers the last id it read and asks "
    "for `filter[after]=<that id>` reads everything after it: nothing missed, nothing twice. Events are kept "
    "ROLLCALL_EVENT_RETENTION_DAYS (30).",
)
def list_events_route(
    services: ServicesDep,
    page: Paged,
    type: Annotated[
        str | None,
        Query(alias="filter[type]", pattern=rf"^({TYPES})(,({TYPES}))*$", description="Any of these types."),
    ] = None,
    after: Annotated[
        str | None, Query(alias="filter[after]", pattern=r"^evt_[0-9]{1,18}$", description="Only events after it.")
    ] = None,
) -> dict[str, Any]:
    with services.database.reading() as session:
        found = list_events(session, page, types=texts(type), after=event_number(after) if after is not None else None)
        return listing(found, documents=documents(session, found.items))


@router.post(
    "/webhooks",
    tags=["webhooks"],
    status_code=201,
    response_model=One[WebhookWithSecret],
    responses=errors(),
    description="A new endpoint: it receives the events of these types that happen from now on, signed with "
    "its secret (`whsec_...`, shown in this answer only). The URL must be https:// and on the public internet.",
)
def create_webhook(services: ServicesDep, webhook: NewWebhook) -> dict[str, Any]:
    with services.database.writing() as session:
        made, secret = endpoints.create_webhook(
            session,
            url=str(webhook.url),
            events=[str(kind) for kind in webhook.events],
            description=webhook.description,
            settings=services.settings,
        )
        [shape] = endpoints.shapes(session, [made])
        return one(WebhookWithSecret.model_validate({**shape, "secret": secret}))


@router.get("/webhooks", tags=["webhooks"], response_model=Listing[WebhookDocument], responses=errors())
def list_webhooks(services: ServicesDep, page: Paged) -> dict[str, Any]:
    with services.database.reading() as session:
        found = endpoints.list_webhooks(session, page)
        shown = [WebhookDocument.model_validate(shape) for shape in endpoints.shapes(session, found.items)]
        return listing(found, documents=shown)


@router.get("/webhooks/{webhook_id}", tags=["webhooks"], response_model=One[WebhookDocument], responses=errors(404))
def get_webhook(services: ServicesDep, webhook_id: Id) -> dict[str, Any]:
    with services.database.reading() as session:
        [shape] = endpoints.shapes(session, [endpoints.get_webhook(session, webhook_id)])
        return one(WebhookDocument.model_validate(shape))


@router.patch(
    "/webhooks/{webhook_id}",
    tags=["webhooks"],
    response_model=One[WebhookDocument],
    responses=errors(404),
    description="Change the URL, the events or `enabled` (true again after it was disabled).",
)
def update_webhook(services: ServicesDep, webhook_id: Id, changes: WebhookChanges) -> dict[str, Any]:
    sent = changes.model_dump(exclude_unset=True, mode="json")
    with services.database.writing() as session:
        webhook = endpoints.update_webhook(session, webhook_id, sent, services.settings)
        [shape] = endpoints.shapes(session, [webhook])
        return one(WebhookDocument.model_validate(shape))


@router.delete("/webhooks/{webhook_id}", tags=["webhooks"], status_code=204, responses=errors(404))
def delete_webhook(services: ServicesDep, webhook_id: Id) -> None:
    with services.database.writing() as session:
        endpoints.delete_webhook(session, webhook_id)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    tags=["webhooks"],
    response_model=One[WebhookWithSecret],
    responses=errors(404),
    description="A new signing secret (shown in this answer only). For 24 hours deliveries carry a signature "
    "of each, old and new, so a receiver can switch at its pace.",
)
def rotate_secret(services: ServicesDep, webhook_id: Id) -> dict[str, Any]:
    with services.database.writing() as session:
        webhook, secret = endpoints.rotate_secret(session, webhook_id)
        [shape] = endpoints.shapes(session, [webhook])
        return one(WebhookWithSecret.model_validate({**shape, "secret": secret}))


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    tags=["webhooks"],
    response_model=Listing[DeliveryDocument],
    responses=errors(404),
    description="Its deliveries, newest first, each with its attempts (time, status code, duration, error).",
)
def list_deliveries(
    services: ServicesDep,
    webhook_id: Id,
    page: Paged,
    state: Annotated[
        Troubled | None,
        Query(
            alias="filter[state]",
            description="failed: gave up; retrying: an attempt failed and another is due; failing: either.",
        ),
    ] = None,
) -> dict[str, Any]:
    with services.database.reading() as session:
        found: Page[Any] = endpoints.list_deliveries(session, webhook_id, page, only=state)
        return listing(found, DeliveryDocument)


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    tags=["webhooks"],
    response_model=One[DeliveryDocument],
    responses=errors(404, 409),
    description="Send a pending or failed delivery again now, with a fresh schedule of attempts.",
)
def retry_delivery(
    services: ServicesDep, webhook_id: Id, delivery_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)]
) -> dict[str, Any]:
    with services.database.writing() as session:
        return one(endpoints.retry_delivery(session, webhook_id, delivery_id))


@router.post(
    "/webhooks/{webhook_id}/test",
    tags=["webhooks"],
    response_model=One[DeliveryDocument],
    responses=errors(404),
    description="Send this endpoint a `webhook.test` event now (whatever it subscribes to).",
)
def send_test_event(services: ServicesDep, webhook_id: Id) -> dict[str, Any]:
    with services.database.writing() as session:
        return one(endpoints.send_test_event(session, webhook_id))
