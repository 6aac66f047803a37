"""`/api/v3` campaigns, actions, users, signups and posts: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session

from rollcall.activity import service as activity
from rollcall.activity.models import (
    USER_ID,
    ActionChanges,
    ActionDocument,
    CampaignChanges,
    CampaignDocument,
    NewAction,
    NewCampaign,
    PostDocument,
    Signup,
    SignupDocument,
    UserDocument,
)
from rollcall.api import (
    INTEGER_LIST,
    MAX_ID,
    STAFF,
    TEXT_LIST,
    Listing,
    One,
    errors,
    integers,
    listing,
    moment,
    one,
    page_request,
    texts,
)
from rollcall.calls import service as operations
from rollcall.paging import DEFAULT_LIMIT, PageRequest
from rollcall.phones import mobile_filter
from rollcall.services import ServicesDep

router = APIRouter(prefix="/api/v3", dependencies=STAFF)

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Paged = Annotated[PageRequest, Depends(page_request)]


def _integers(alias: str) -> Any:
    return Query(alias=alias, pattern=INTEGER_LIST, description="Comma-separated ids: any of them.")


def _texts(alias: str) -> Any:
    return Query(alias=alias, pattern=TEXT_LIST, description="Comma-separated values: any of them.")


# -- campaigns ------------------------------------------------------------------------------


@router.get("/campaigns", tags=["campaigns"], response_model=Listing[CampaignDocument], responses=errors())
def list_campaigns(services: ServicesDep, page: Paged) -> dict[str, Any]:
    with services.database.reading() as session:
        return listing(activity.list_campaigns(session, page), CampaignDocument)


@router.get("/campaigns/{campaign_id}", tags=["campaigns"], response_model=One[CampaignDocument], responses=errors(404))
def get_campaign(services: ServicesDep, campaign_id: Id) -> dict[str, Any]:
    with services.database.reading() as session:
        return one(CampaignDocument.model_validate(activity.get_campaign(session, campaign_id)))


@router.post(
    "/campaigns", tags=["campaigns"], status_code=201, response_model=One[CampaignDocument], responses=errors()
)
def create_campaign(services: ServicesDep, campaign: NewCampaign) -> dict[str, Any]:
    with services.database.writing() as session:
        return one(CampaignDocument.model_validate(activity.create_campaign(session, **campaign.model_dump())))


@router.patch(
    "/campaigns/{campaign_id}", tags=["campaigns"], response_model=One[CampaignDocument], responses=errors(404)
)
def update_campaign(services: ServicesDep, campaign_id: Id, changes: CampaignChanges) -> dict[str, Any]:
    sent = changes.model_dump(exclude_unset=True)
    with services.database.writing() as session:
        return one(CampaignDocument.model_validate(activity.update_campaign(session, campaign_id, sent)))


# -- actions --------------------------------------------------------------------------------


@router.get("/actions", tags=["actions"], response_model=Listing[ActionDocument], responses=errors())
def list_actions(
    services: ServicesDep,
    page: Paged,
    campaign_id: Annotated[str | None, _integers("filter[campaign_id]")] = None,
    callpower_campaign_id: Annotated[str | None, _integers("filter[callpower_campaign_id]")] = None,
) -> dict[str, Any]:
    with services.database.reading() as session:
        found = activity.list_actions(
            session,
            page,
            campaign_ids=integers("filter[campaign_id]", campaign_id),
            callpower_campaign_ids=integers("filter[callpower_campaign_id]", callpower_campaign_id),
        )
        return listing(found, ActionDocument)


@router.get("/actions/{action_id}", tags=["actions"], response_model=One[ActionDocument], responses=errors(404))
def get_action(services: ServicesDep, action_id: Id) -> dict[str, Any]:
    with services.database.reading() as session:
        return one(ActionDocument.model_validate(activity.get_action(session, action_id)))


@router.post(
    "/actions",
    tags=["actions"],
    status_code=201,
    response_model=One[ActionDocument],
    responses=errors(404, 409),
    description="A `callpower_campaign_id` already held by another action is 409. Setting one imports the "
    "calls that waited for it (`unmapped`) at once.",
)
def create_action(services: ServicesDep, action: NewAction) -> dict[str, Any]:
    with services.database.writing() as session:
        made, _ = operations.add_action(session, **action.model_dump())
        return one(ActionDocument.model_validate(made))


@router.patch(
    "/actions/{action_id}",
    tags=["actions"],
    response_model=One[ActionDocument],
    responses=errors(404, 409),
    description="Only the fields sent change. Setting or changing `callpower_campaign_id` imports that "
    "campaign's waiting calls at once; `null` unmaps the action.",
)
def update_action(services: ServicesDep, action_id: Id, changes: ActionChanges) -> dict[str, Any]:
    with services.database.writing() as session:
        action, _ = operations.change_action(session, action_id, changes.model_dump(exclude_unset=True))
        return one(ActionDocument.model_validate(action))


# -- users ----------------------------------------------------------------------------------


@router.get("/users", tags=["users"], response_model=Listing[UserDocument], responses=errors())
def list_users(
    services: ServicesDep,
    page: Paged,
    mobile: Annotated[
        str | None, Query(alias="filter[mobile]", pattern=TEXT_LIST, description="Any format the intake takes.")
    ] = None,
) -> dict[str, Any]:
    mobiles = None
    if mobile is not None:  # read as the intake reads a mobile
        mobiles = mobile_filter(texts(mobile) or [], services.settings.default_region, name="filter[mobile]")
    with services.database.reading() as session:
        return listing(activity.list_users(session, page, mobiles=mobiles), UserDocument)


@router.get("/users/{user_id}", tags=["users"], response_model=One[UserDocument], responses=errors(404))
def get_user(services: ServicesDep, user_id: UserId) -> dict[str, Any]:
    with services.database.reading() as session:
        return one(UserDocument.model_validate(activity.get_user(session, user_id)))


UserId = Annotated[str, Path(pattern=USER_ID, description="24 lowercase hex characters.")]


# -- signups --------------------------------------------------------------------------------

Include = Annotated[
    str | None,
    Query(pattern=r"^posts$", description="`posts` adds each signup's newest posts, and a link to the rest."),
]


def _signup_documents(session: Session, signups: list[Signup], include: str | None) -> list[SignupDocument]:
    """Signups as documents; with `include=posts`, each with its newest page of posts and a link
    to the rest (an answer stays bounded however many posts a signup has)."""
    pages = activity.newest_posts_of_signups(session, [s.id for s in signups], DEFAULT_LIMIT) if include else None
    documents = []
    for signup in signups:
        document = SignupDocument.model_validate(signup)
        if pages is not None:
            page = pages[signup.id]
            document.posts = [PostDocument.model_validate(post) for post in page.items]
            if page.next:
                document.posts_next = "/api/v3/posts?" + urlencode(
                    {"filter[signup_id]": signup.id, "cursor": page.next}
                )
        documents.append(document)
    return documents


@router.get("/signups", tags=["signups"], response_model=Listing[SignupDocument], responses=errors())
def list_signups(
    services: ServicesDep,
    page: Paged,
    campaign_id: Annotated[str | None, _integers("filter[campaign_id]")] = None,
    northstar_id: Annotated[str | None, _texts("filter[northstar_id]")] = None,
    include: Include = None,
) -> dict[str, Any]:
    with services.database.reading() as session:
        found = activity.list_signups(
            session,
            page,
            campaign_ids=integers("filter[campaign_id]", campaign_id),
            northstar_ids=texts(northstar_id),
        )
        return listing(found, documents=_signup_documents(session, found.items, include))


@router.get("/signups/{signup_id}", tags=["signups"], response_model=One[SignupDocument], responses=errors(404))
def get_signup(services: ServicesDep, signup_id: Id, include: Include = None) -> dict[str, Any]:
    with services.database.reading() as session:
        [document] = _signup_documents(session, [activity.get_signup(session, signup_id)], include)
        return one(document)


# -- posts ----------------------------------------------------------------------------------


@router.get("/posts", tags=["posts"], response_model=Listing[PostDocument], responses=errors())
def list_posts(
    services: ServicesDep,
    page: Paged,
    campaign_id: Annotated[str | None, _integers("filter[campaign_id]")] = None,
    action_id: Annotated[str | None, _integers("filter[action_id]")] = None,
    signup_id: Annotated[str | None, _integers("filter[signup_id]")] = None,
    northstar_id: Annotated[str | None, _texts("filter[northstar_id]")] = None,
    type: Annotated[str | None, _texts("filter[type]")] = None,
    status: Annotated[str | None, _texts("filter[status]")] = None,
    source: Annotated[str | None, _texts("filter[source]")] = None,
    call_timestamp_gte: Annotated[
        str | None,
        Query(
            alias="filter[call_timestamp][gte]",
            description="Calls made at or after (ISO-8601; no offset means UTC).",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    call_timestamp_lt: Annotated[
        str | None,
        Query(
            alias="filter[call_timestamp][lt]",
            description="Calls made before (ISO-8601; no offset means UTC).",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
) -> dict[str, Any]:
    with services.database.reading() as session:
        found = activity.list_posts(
            session,
            page,
            campaign_ids=integers("filter[campaign_id]", campaign_id),
            action_ids=integers("filter[action_id]", action_id),
            signup_ids=integers("filter[signup_id]", signup_id),
            northstar_ids=texts(northstar_id),
            types=texts(type),
            statuses=texts(status),
            sources=texts(source),
            call_timestamp_gte=moment("filter[call_timestamp][gte]", call_timestamp_gte),
            call_timestamp_lt=moment("filter[call_timestamp][lt]", call_timestamp_lt),
        )
        return listing(found, PostDocument)


@router.get("/posts/{post_id}", tags=["posts"], response_model=One[PostDocument], responses=errors(404))
def get_post(services: ServicesDep, post_id: Id) -> dict[str, Any]:
    with services.database.reading() as session:
        return one(PostDocument.model_validate(activity.get_post(session, post_id)))
