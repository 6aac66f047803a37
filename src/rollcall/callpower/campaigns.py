"""The CallPower campaigns seen: noted as their calls are stored, summarized with the action
they map to, and their defaults for the fields their calls lack."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.activity import service as activity
from rollcall.activity.models import Action
from rollcall.callpower.models import CallPowerCampaign, CallPowerCampaignDocument, MappedAction
from rollcall.callpower.record import InvalidCall, check_default
from rollcall.calls import statistics
from rollcall.db import row_of, table_of
from rollcall.dialect import driver_times, upsert_rows
from rollcall.paging import Page, PageRequest, count, keyset_page

_campaigns = table_of(CallPowerCampaign)
_KIND = "CallPower campaign"


class CampaignCall(Protocol):
    """What noting needs of a stored call (a delivery, or a repaired call's delivery)."""

    @property
    def campaign_id(self) -> int | None: ...
    @property
    def campaign_name(self) -> str | None: ...
    @property
    def document(self) -> dict[str, Any] | None: ...
    @property
    def call_timestamp(self) -> dt.datetime | None: ...


# -- noting them as calls are stored ----------------------------------------------------------


def _noted(campaigns: sa.Table, offered: Any) -> dict[str, Any]:
    def earlier(column: str) -> Any:
        return sa.case(
            (campaigns.c[column].is_(None), offered[column]),
            (offered[column] < campaigns.c[column], offered[column]),
            else_=campaigns.c[column],
        )

    def later(column: str) -> Any:
        return sa.case(
            (campaigns.c[column].is_(None), offered[column]),
            (offered[column] > campaigns.c[column], offered[column]),
            else_=campaigns.c[column],
        )

    return {
        "name": sa.func.coalesce(offered.name, campaigns.c.name),
        "first_call_at": earlier("first_call_at"),
        "last_call_at": later("last_call_at"),
        "first_received_at": earlier("first_received_at"),
        "last_received_at": later("last_received_at"),
    }


def note_stored_calls(session: Session, stored: Sequence[CampaignCall], received_at: dt.datetime) -> None:
    """Keep `callpower_campaigns` up to date with stored calls (one row per campaign): their
    names, and each campaign's span of call times."""
    seen: dict[int, dict[str, Any]] = {}
    for call in stored:
        if call.campaign_id is None:
            continue
        campaign = seen.setdefault(
            call.campaign_id, {"id": call.campaign_id, "name": None, "first_call_at": None, "last_call_at": None}
        )
        moment = call.call_timestamp
        if call.document is not None and moment is not None:
            campaign["name"] = call.campaign_name
            first, last = campaign["first_call_at"], campaign["last_call_at"]
            campaign["first_call_at"] = min(first, moment) if first else moment
            campaign["last_call_at"] = max(last, moment) if last else moment
    if seen:
        time = driver_times(session)
        received = {"first_received_at": time(received_at), "last_received_at": time(received_at)}
        rows = [
            {
                **campaign,
                "first_call_at": time(campaign["first_call_at"]),
                "last_call_at": time(campaign["last_call_at"]),
            }
            | received
            for _, campaign in sorted(seen.items())
        ]
        upsert_rows(session, _campaigns, ("id",), _noted, rows)


# -- reading them -----------------------------------------------------------------------------


def summarize_campaigns(session: Session, campaigns: Sequence[CallPowerCampaign]) -> list[CallPowerCampaignDocument]:
    """CallPower campaigns as seen through their calls, with the action each maps to (if any)."""
    ids = [campaign.id for campaign in campaigns]
    counts = statistics.calls_by_campaign(session, ids)
    reasons = statistics.rejections_by_campaign(session, ids)
    actions = activity.actions_for_callpower_campaigns(session, ids)
    return [
        CallPowerCampaignDocument(
            callpower_campaign_id=campaign.id,
            name=campaign.name,
            calls=counts[campaign.id],
            first_call_at=campaign.first_call_at,
            last_call_at=campaign.last_call_at,
            last_received_at=campaign.last_received_at,
            action=MappedAction.model_validate(actions[campaign.id]) if campaign.id in actions else None,
            defaults=campaign.defaults or {},
            rejected_because=reasons[campaign.id],
        )
        for campaign in campaigns
    ]


def get_callpower_campaign(session: Session, callpower_campaign_id: int) -> CallPowerCampaignDocument:
    [summary] = summarize_campaigns(session, [row_of(session, CallPowerCampaign, callpower_campaign_id, _KIND)])
    return summary


def _seen(mapped: bool | None) -> sa.Select[Any]:
    query = sa.select(CallPowerCampaign)
    if mapped is not None:
        has_action = sa.exists().where(Action.callpower_campaign_id == CallPowerCampaign.id)
        query = query.where(has_action if mapped else ~has_action)
    return query


def count_callpower_campaigns(session: Session, *, mapped: bool | None = None) -> int:
    return count(session, _seen(mapped))


def list_callpower_campaigns(
    session: Session, page: PageRequest, *, mapped: bool | None = None
) -> Page[CallPowerCampaignDocument]:
    """Every CallPower campaign seen, newest id first; `mapped` False gives only the unmapped ones."""
    found = keyset_page(session, _seen(mapped), [CallPowerCampaign.id], page, lambda c: (c.id,))
    return Page(summarize_campaigns(session, found.items), found.next, found.prev)


# -- their defaults ---------------------------------------------------------------------------

_DEFAULTS = sa.select(_campaigns.c.id, _campaigns.c.defaults).where(
    _campaigns.c.id.in_(sa.bindparam("ids", expanding=True)), _campaigns.c.defaults.is_not(None)
)


def defaults_of(session: Session, callpower_campaign_ids: Collection[int | None]) -> dict[int, dict[str, str]]:
    """The defaults of these CallPower campaigns, by id (those with none are absent)."""
    wanted = sorted(id_ for id_ in callpower_campaign_ids if id_ is not None)
    if not wanted:
        return {}
    return dict(session.connection().execute(_DEFAULTS, {"ids": wanted}).all())


def set_campaign_defaults(
    session: Session, callpower_campaign_id: int, changes: Mapping[str, str | None]
) -> CallPowerCampaign:
    """Set (or, with None, remove) defaults of a CallPower campaign seen before; `InvalidCall`
    names a field that may not have one or a value that cannot be one."""
    campaign = row_of(session, CallPowerCampaign, callpower_campaign_id, _KIND, for_update=True)
    defaults = dict(campaign.defaults or {})
    problems: dict[str, list[str]] = {}
    for name, value in changes.items():
        try:
            if value is None:
                check_default(name, "-")  # only a defaultable field can have one to remove
                defaults.pop(name, None)
            else:
                defaults[name] = check_default(name, value)
        except InvalidCall as invalid:
            problems.update(invalid.fields)
    if problems:
        raise InvalidCall(problems)
    campaign.defaults = defaults or None
    session.flush()
    return campaign
