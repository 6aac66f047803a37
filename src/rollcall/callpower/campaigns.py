"""The CallPower campaigns seen: noted as their calls are stored, summarized with the action
they map to, and their defaults for the fields their calls lack."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.activity import service as activity
from rollcall.activity.models import Action
from rollcall.callpower.models import CallPowerCampaign
from rollcall.callpower.record import InvalidCall, check_default
from rollcall.calls import statistics
from rollcall.db import table_of
from rollcall.dialect import upsert
from rollcall.errors import NotFound
from rollcall.paging import Page, PageRequest, keyset_page

_campaigns = table_of(CallPowerCampaign)


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


def _seen(campaigns: sa.Table, offered: Any) -> dict[str, Any]:
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
        received = {"first_received_at": received_at, "last_received_at": received_at}
        rows = [{**campaign, **received} for _, campaign in sorted(seen.items())]
        session.connection().execute(upsert(session, _campaigns, ("id",), _seen), rows)


# -- reading them -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignSummary:
    """A CallPower campaign as seen through its calls, and the action it maps to (if any)."""

    callpower_campaign_id: int
    name: str | None
    calls: dict[str, int]
    first_call_at: dt.datetime | None
    last_call_at: dt.datetime | None
    last_received_at: dt.datetime
    action: activity.ActionTarget | None
    defaults: dict[str, str]
    rejected_because: dict[str, int]  # its rejected calls' problems, most common first


def summarize_campaigns(session: Session, campaigns: Sequence[CallPowerCampaign]) -> list[CampaignSummary]:
    ids = [campaign.id for campaign in campaigns]
    counts = statistics.calls_by_campaign(session, ids)
    reasons = statistics.rejections_by_campaign(session, ids)
    actions = activity.actions_for_callpower_campaigns(session, ids)
    summaries = []
    for campaign in campaigns:
        summaries.append(
            CampaignSummary(
                campaign.id,
                campaign.name,
                counts[campaign.id],
                campaign.first_call_at,
                campaign.last_call_at,
                campaign.last_received_at,
                actions.get(campaign.id),
                campaign.defaults or {},
                reasons[campaign.id],
            )
        )
    return summaries


def get_callpower_campaign(session: Session, callpower_campaign_id: int) -> CampaignSummary:
    campaign = session.get(CallPowerCampaign, callpower_campaign_id)
    if campaign is None:
        raise NotFound("CallPower campaign", callpower_campaign_id)
    [summary] = summarize_campaigns(session, [campaign])
    return summary


def list_callpower_campaigns(
    session: Session, page: PageRequest, *, mapped: bool | None = None
) -> Page[CampaignSummary]:
    """Every CallPower campaign seen, newest id first; `mapped` False gives only the unmapped ones."""
    query = sa.select(CallPowerCampaign)
    if mapped is not None:
        has_action = sa.exists().where(Action.callpower_campaign_id == CallPowerCampaign.id)
        query = query.where(has_action if mapped else ~has_action)
    found = keyset_page(session, query, [CallPowerCampaign.id], page, lambda c: (c.id,))
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
    campaign = session.get(CallPowerCampaign, callpower_campaign_id, with_for_update=True)
    if campaign is None:
        raise NotFound("CallPower campaign", callpower_campaign_id)
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
