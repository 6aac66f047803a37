"""Plain functions over a session: storing deliveries, the life of a stored call, campaign mapping."""

from __future__ import annotations

import collections
import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.activity import service as activity
from rollcall.activity.models import Action
from rollcall.callpower.models import (
    RETRYABLE_STATES,
    SEEN_BY_IMPORTER,
    WAITING_STATES,
    Call,
    CallPowerCampaign,
    CallState,
    ClaimedCall,
    ImportOutcome,
)
from rollcall.callpower.record import (
    InvalidCall,
    campaign_id_of,
    dedup_key_of,
    lacks_defaultable,
    parse_call,
    with_defaults,
)
from rollcall.dialect import (
    announce_calls,
    driver_json,
    driver_time,
    insert_rows_ignoring_conflicts,
    lock_callpower_campaign,
    rarely,
    upsert,
)
from rollcall.errors import Conflict, NotFound
from rollcall.paging import Page, PageRequest, any_of, keyset_page
from rollcall.times import utcnow

_calls = Call.__table__
_campaigns = CallPowerCampaign.__table__
MAX_RETRY_DELAY = dt.timedelta(hours=6)


class UnknownCall(NotFound):
    def __init__(self, call_id: object) -> None:
        super().__init__("call", call_id)


class CallPowerCampaignTaken(Conflict):
    def __init__(self, callpower_campaign_id: int, action_id: int | None) -> None:
        holder = f"action {action_id}" if action_id is not None else "another action"
        super().__init__(f"CallPower campaign {callpower_campaign_id} is already mapped to {holder}.")
        self.callpower_campaign_id = callpower_campaign_id
        self.action_id = action_id


class CallNotRetryable(Conflict):
    def __init__(self, call_id: int, state: str) -> None:
        allowed = ", ".join(state.value for state in RETRYABLE_STATES)
        super().__init__(f"Call {call_id} is {state}; only {allowed} calls can be retried.")


# -- deliveries -------------------------------------------------------------------------------


def raw_text(body: bytes) -> str:
    """The body as text to keep: undecodable bytes and NUL (which PostgreSQL text refuses) replaced."""
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One authenticated delivery, ready to store: a valid record (as its stored document), or
    the errors that rejected it."""

    raw: str
    content_type: str | None
    document: dict[str, Any] | None = None
    errors: dict[str, list[str]] | None = None
    callpower_campaign_id: int | None = None
    dedup_key: str | None = None
    # What the intake answers: 200 stored, 400 or 415 unreadable, 422 invalid (the last three kept as rejected).
    status: int = 200
    call_timestamp: dt.datetime | None = None  # the record's, kept as a datetime for the row and the counters
    defaulted: list[str] | None = None  # fields its campaign's defaults completed
    # (payload, region) of a delivery its campaign's defaults could complete, until they are
    # looked up where it is stored (`complete_with_defaults`); None once they were.
    completable: tuple[Mapping[str, Any], str] | None = None

    @classmethod
    def of_payload(
        cls,
        payload: Any,
        *,
        raw: str,
        content_type: str | None,
        region: str,
        defaults: Mapping[str, str] | None = None,
    ) -> Delivery:
        """Validate a decoded payload; an invalid one becomes a rejected delivery, never an exception.

        With `defaults` (its CallPower campaign's), missing descriptive fields are completed
        first. Without, a payload that lacks one of them is marked `completable`.
        """
        defaulted: list[str] = []
        completable = None
        if isinstance(payload, Mapping):
            if defaults is not None:
                payload, defaulted = with_defaults(payload, defaults)
            elif lacks_defaultable(payload):
                completable = (payload, region)
        try:
            record = parse_call(payload, region=region)
        except InvalidCall as invalid:
            campaign = campaign_id_of(payload)
            return cls(
                raw,
                content_type,
                errors=invalid.fields,
                callpower_campaign_id=campaign,
                status=422,
                completable=completable if campaign is not None else None,
            )
        document = record.to_document()
        return cls(
            raw,
            content_type,
            document,
            None,
            record.callpower_campaign_id,
            dedup_key_of(document),
            call_timestamp=record.call_timestamp,
            defaulted=defaulted or None,
            completable=completable,
        )

    @classmethod
    def rejected(
        cls, errors: dict[str, list[str]], *, raw: str, content_type: str | None, status: int = 422
    ) -> Delivery:
        return cls(raw, content_type, errors=errors, status=status)

    def values(self, now: Any, time: Callable[[dt.datetime | None], Any]) -> tuple[Any, ...]:
        """The row to store, in `_STORED_COLUMNS` order, as the driver takes it (`now` already is)."""
        document = self.document
        if document is None:
            errors = driver_json(self.errors)
            return (CallState.REJECTED.value, None, now, now, self.raw, self.content_type, "null", errors,
                    self.callpower_campaign_id, None, None, None, 0, None, "null")  # fmt: skip
        return (
            CallState.RECEIVED.value,
            self.dedup_key,
            now,
            now,
            self.raw,
            self.content_type,
            driver_json(document),
            "null",  # no errors: JSON null, as SQLAlchemy stores None in a JSON column
            self.callpower_campaign_id,
            document["callpower_campaign_name"],
            document["mobile"],
            time(self.call_timestamp),
            0,
            now,
            driver_json(self.defaulted),
        )


_STORED_COLUMNS = (
    "state",
    "dedup_key",
    "received_at",
    "updated_at",
    "raw",
    "content_type",
    "record",
    "errors",
    "callpower_campaign_id",
    "callpower_campaign_name",
    "mobile",
    "call_timestamp",
    "attempts",
    "next_attempt_at",
    "defaulted",
)


@dataclass(frozen=True)
class Stored:
    deliveries: list[Delivery]  # as stored (completed by their campaigns' defaults), in the order given
    new: int  # valid calls among them that were not stored before


_DEFAULTS = sa.select(_campaigns.c.id, _campaigns.c.defaults).where(
    _campaigns.c.id.in_(sa.bindparam("ids", expanding=True)), _campaigns.c.defaults.is_not(None)
)


def complete_with_defaults(session: Session, deliveries: Sequence[Delivery]) -> list[Delivery]:
    """Each delivery completed by its CallPower campaign's defaults, read in this transaction (so
    a default set a moment ago applies). Only deliveries that lack a descriptive field cost a
    query, one for all of them; calls that have every field never look."""
    waiting = {d.callpower_campaign_id for d in deliveries if d.completable is not None}
    if not waiting:
        return list(deliveries)
    found = dict(session.connection().execute(_DEFAULTS, {"ids": sorted(waiting)}).all())
    completed = []
    for delivery in deliveries:
        defaults = found.get(delivery.callpower_campaign_id) if delivery.completable is not None else None
        if defaults:
            payload, region = delivery.completable  # type: ignore[misc]
            delivery = Delivery.of_payload(
                payload, raw=delivery.raw, content_type=delivery.content_type, region=region, defaults=defaults
            )
        completed.append(delivery)
    return completed


def store_deliveries(session: Session, deliveries: Sequence[Delivery]) -> Stored:
    """Store deliveries in one statement, completed by their campaigns' defaults; a call stored
    before is skipped."""
    if not deliveries:
        return Stored([], 0)
    deliveries = complete_with_defaults(session, deliveries)
    now = utcnow()
    stamp = driver_time(session, now)
    time = functools.partial(driver_time, session)
    inserted = insert_rows_ignoring_conflicts(
        session, _calls, _STORED_COLUMNS, [delivery.values(stamp, time) for delivery in deliveries], ("dedup_key",)
    )
    new_keys = {key for (key,) in inserted if key is not None}
    stored = []  # rejected deliveries are always new rows; a valid one only if its key went in
    for delivery in deliveries:
        if delivery.dedup_key is None:
            stored.append(delivery)
        elif delivery.dedup_key in new_keys:
            new_keys.discard(delivery.dedup_key)  # the same call twice in one batch went in once
            stored.append(delivery)
    count_campaign_calls(session, stored, now)
    new = sum(1 for delivery in stored if delivery.document is not None)
    if new:
        announce_calls(session, in_process=False)  # the writer storing them imports in its gaps
    return Stored(deliveries, new)


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
        "calls": campaigns.c.calls + offered.calls,
        "first_call_at": earlier("first_call_at"),
        "last_call_at": later("last_call_at"),
        "first_received_at": earlier("first_received_at"),
        "last_received_at": later("last_received_at"),
    }


def count_campaign_calls(
    session: Session, stored: Sequence[Delivery], received_at: dt.datetime, *, new: bool = True
) -> None:
    """Keep `callpower_campaigns` up to date with stored calls (one row per campaign): count
    them (`new`), and widen each campaign's span of call times. A repaired call that keeps its
    campaign is not counted twice (`new=False`)."""
    seen: dict[int, dict[str, Any]] = {}
    for delivery in stored:
        if delivery.callpower_campaign_id is None:
            continue
        campaign = seen.setdefault(
            delivery.callpower_campaign_id,
            {
                "id": delivery.callpower_campaign_id,
                "name": None,
                "calls": 0,
                "first_call_at": None,
                "last_call_at": None,
            },
        )
        campaign["calls"] += 1 if new else 0
        moment = delivery.call_timestamp
        if delivery.document is not None and moment is not None:
            campaign["name"] = delivery.document["callpower_campaign_name"]
            first, last = campaign["first_call_at"], campaign["last_call_at"]
            campaign["first_call_at"] = min(first, moment) if first else moment
            campaign["last_call_at"] = max(last, moment) if last else moment
    if seen:
        moment = {"first_received_at": received_at, "last_received_at": received_at}
        rows = [{**campaign, **moment} for _, campaign in sorted(seen.items())]
        session.connection().execute(upsert(session, _campaigns, ("id",), _seen), rows)


def uncount_campaign_call(session: Session, callpower_campaign_id: int) -> None:
    """A stored call no longer names this campaign (it was repaired into another)."""
    session.execute(
        sa.update(_campaigns).where(_campaigns.c.id == callpower_campaign_id).values(calls=_campaigns.c.calls - 1)
    )


# -- reading calls ----------------------------------------------------------------------------


def get_call(session: Session, call_id: int) -> Call:
    call = session.get(Call, call_id)
    if call is None:
        raise UnknownCall(call_id)
    return call


def list_calls(
    session: Session,
    page: PageRequest,
    *,
    states: Sequence[CallState] | None = None,
    callpower_campaign_ids: Sequence[int] | None = None,
    mobiles: Sequence[str] | None = None,
) -> Page[Call]:
    """Stored calls, newest first."""
    query = sa.select(Call).where(
        *any_of(Call.state, states),
        *any_of(Call.callpower_campaign_id, callpower_campaign_ids),
    )
    if mobiles is None:
        return keyset_page(session, query, [Call.id], page, lambda c: (c.id,))
    # Two halves, each with its index: calls the importer has seen are indexed by mobile (a
    # partial index, see `Call`); those still waiting are few and found by state.
    by_mobile = any_of(Call.mobile, mobiles)
    halves = []
    if states is None or any(state != CallState.RECEIVED for state in states):
        halves.append(query.where(*by_mobile, sa.text(f"calls.{SEEN_BY_IMPORTER}")))
    if states is None or CallState.RECEIVED in states:
        halves.append(query.where(*by_mobile, rarely(session, Call.state == CallState.RECEIVED.value)))
    return keyset_page(session, halves, [Call.id], page, lambda c: (c.id,))


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


REASONS_SAMPLE = 1000  # the newest rejected calls whose reasons are counted


def rejection_reasons(
    session: Session, *, callpower_campaign_id: int | None = None, since: dt.datetime | None = None
) -> collections.Counter[str]:
    """Why calls were rejected: each problem, with how many of the newest `REASONS_SAMPLE`
    rejected calls (of one CallPower campaign, or since a time) have it."""
    query = sa.select(Call.errors).where(Call.state == CallState.REJECTED)
    if callpower_campaign_id is not None:
        query = query.where(Call.callpower_campaign_id == callpower_campaign_id)
    if since is not None:
        query = query.where(Call.received_at >= since)
    reasons: collections.Counter[str] = collections.Counter()
    for errors in session.scalars(query.order_by(Call.id.desc()).limit(REASONS_SAMPLE)):
        reasons.update({message for messages in (errors or {}).values() for message in messages})
    return reasons


# States other than `imported` are few; `imported` is what remains of a campaign's calls.
_UNFINISHED = [state for state in CallState if state != CallState.IMPORTED]


def summarize_campaigns(session: Session, campaigns: Sequence[CallPowerCampaign]) -> list[CampaignSummary]:
    ids = [campaign.id for campaign in campaigns]
    counts: dict[int, dict[str, int]] = {id_: dict.fromkeys(CallState, 0) for id_ in ids}
    if ids:
        rows = session.execute(
            sa.select(Call.callpower_campaign_id, Call.state, sa.func.count())
            .where(Call.state.in_(_UNFINISHED), Call.callpower_campaign_id.in_(ids))
            .group_by(Call.callpower_campaign_id, Call.state)
        )
        for campaign_id, state, count in rows:
            counts[campaign_id][state] = count
    actions = activity.actions_for_callpower_campaigns(session, ids)
    summaries = []
    for campaign in campaigns:
        by_state = {str(state): count for state, count in counts[campaign.id].items()}
        by_state[CallState.IMPORTED] = campaign.calls - sum(by_state.values())
        reasons = rejection_reasons(session, callpower_campaign_id=campaign.id) if by_state[CallState.REJECTED] else {}
        summaries.append(
            CampaignSummary(
                campaign.id,
                campaign.name,
                by_state,
                campaign.first_call_at,
                campaign.last_call_at,
                campaign.last_received_at,
                actions.get(campaign.id),
                campaign.defaults or {},
                dict(collections.Counter(reasons).most_common()),
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


# -- the importer's side of a call's life -----------------------------------------------------


_CLAIM = {
    state: sa.select(_calls.c.id, _calls.c.record, _calls.c.attempts)
    .where(_calls.c.state == state, _calls.c.next_attempt_at <= sa.bindparam("now"))
    .order_by(_calls.c.next_attempt_at, _calls.c.id)
    .limit(sa.bindparam("limit"))
    .with_for_update(skip_locked=True)
    for state in WAITING_STATES
}


def claim_waiting_calls(session: Session, limit: int) -> list[ClaimedCall]:
    """Calls due for import, locked for this transaction (other importers skip them).

    New calls first, then failed calls whose retry time has come. On PostgreSQL the rows stay
    locked until the transaction ends, so an importer that dies releases them with its connection.
    """
    now = utcnow()
    claimed: list[ClaimedCall] = []
    connection = session.connection()
    for state in WAITING_STATES:
        if len(claimed) >= limit:
            break
        rows = connection.execute(_CLAIM[state], {"now": now, "limit": limit - len(claimed)})
        claimed.extend(ClaimedCall(*row) for row in rows)
    return claimed


_UPDATE_CALL = sa.update(_calls).where(_calls.c.id == sa.bindparam("call"))


def record_outcomes(session: Session, calls: Sequence[ClaimedCall], outcomes: Sequence[ImportOutcome]) -> None:
    """Store what each call became (one statement for the batch)."""
    now = utcnow()
    session.connection().execute(
        _UPDATE_CALL,
        [
            {
                "call": call.id,
                "state": outcome.state,
                "user_id": outcome.user_id,
                "signup_id": outcome.signup_id,
                "post_id": outcome.post_id,
                "imported_at": now if outcome.state == CallState.IMPORTED else None,
                "attempts": call.attempts + 1,
                "next_attempt_at": None,
                "last_error": None,
                "updated_at": now,
            }
            for call, outcome in zip(calls, outcomes, strict=True)
        ],
    )


def record_failure(
    session: Session, call: ClaimedCall, error: BaseException, *, max_attempts: int, base_delay: float
) -> None:
    """Count a failed attempt: retry later with exponential backoff, or give up (`dead`)."""
    now = utcnow()
    attempts = call.attempts + 1
    if attempts >= max_attempts:
        state, next_attempt_at = CallState.DEAD, None
    else:
        delay = min(dt.timedelta(seconds=base_delay * 2 ** (attempts - 1)), MAX_RETRY_DELAY)
        state, next_attempt_at = CallState.FAILED, now + delay
    session.connection().execute(
        _UPDATE_CALL,
        {
            "call": call.id,
            "state": state,
            "attempts": attempts,
            "next_attempt_at": next_attempt_at,
            "last_error": f"{type(error).__name__}: {error}"[:2000],
            "updated_at": now,
        },
    )


# -- operators' side: retry and mapping -------------------------------------------------------


def _send_back(call_filter: Any) -> Any:
    """UPDATE that hands calls back to the importer now, with a fresh count of attempts."""
    now = utcnow()
    return (
        sa.update(Call)
        .where(call_filter)
        .values(state=CallState.RECEIVED, attempts=0, next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def retry_call(session: Session, call_id: int) -> Call:
    call = get_call(session, call_id)
    if call.state not in RETRYABLE_STATES:
        raise CallNotRetryable(call_id, call.state)
    session.execute(_send_back(Call.id == call_id))
    announce_calls(session)
    session.refresh(call)
    return call


def retry_calls(session: Session, state: CallState) -> int:
    """Send every call in `state` back to the importer; returns how many."""
    if state not in RETRYABLE_STATES:
        allowed = ", ".join(state.value for state in RETRYABLE_STATES)
        raise Conflict(f"Only {allowed} calls can be retried, not {state}.")
    count = session.execute(_send_back(Call.state == state)).rowcount
    if count:
        announce_calls(session)
    return count


def release_unmapped_calls(session: Session, callpower_campaign_id: int) -> int:
    """Hand a CallPower campaign's parked (`unmapped`) calls to the importer; returns how many."""
    lock_callpower_campaign(session, callpower_campaign_id)
    released = session.execute(
        _send_back((Call.state == CallState.UNMAPPED) & (Call.callpower_campaign_id == callpower_campaign_id))
    ).rowcount
    if released:
        announce_calls(session)
    return released


def map_campaign(session: Session, action_id: int, callpower_campaign_id: int | None) -> tuple[Action, int]:
    """Make `action_id` the action of a CallPower campaign (or of none).

    The campaign's waiting (`unmapped`) calls go to the importer in the same transaction.
    Returns the action and how many calls were released.
    """
    action = activity.get_action(session, action_id)
    if callpower_campaign_id is not None:
        holder = activity.action_for_callpower_campaign(session, callpower_campaign_id)
        if holder is not None and holder.id != action.id:
            raise CallPowerCampaignTaken(callpower_campaign_id, holder.id)
    action.callpower_campaign_id = callpower_campaign_id
    try:
        session.flush()
    except sa.exc.IntegrityError:
        # Another session mapped the same campaign between our check and our write.
        raise CallPowerCampaignTaken(callpower_campaign_id or 0, None) from None
    released = 0 if callpower_campaign_id is None else release_unmapped_calls(session, callpower_campaign_id)
    return action, released


def count_calls_by_state(session: Session) -> dict[str, int]:
    """Stored calls in each state, without counting the whole table.

    Most calls end `imported`: the other states are counted on their index, and `imported` is
    what they leave of the total, which `callpower_campaigns` keeps (plus the few rejected
    calls that named no campaign).
    """
    counts = {state.value: 0 for state in CallState}
    rows = session.execute(
        sa.select(Call.state, sa.func.count()).where(Call.state.in_(_UNFINISHED)).group_by(Call.state)
    )
    counts.update({state: count for state, count in rows})
    named = session.scalar(sa.select(sa.func.sum(CallPowerCampaign.calls))) or 0
    unnamed = session.scalar(sa.select(sa.func.count()).select_from(Call).where(Call.callpower_campaign_id.is_(None)))
    counts[CallState.IMPORTED] = max(0, named + (unnamed or 0) - sum(counts.values()))
    return counts


def backlog(session: Session) -> tuple[int, dt.datetime | None]:
    """How many calls wait for an importer (received, failed), and since when the oldest waits."""
    waiting, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(Call.received_at)).where(Call.state.in_(WAITING_STATES))
    ).one()
    return waiting, oldest


# -- the operators' overview ------------------------------------------------------------------


@dataclass(frozen=True)
class DayOfCalls:
    day: dt.date
    calls: dict[str, int]  # by state, for the calls received that day

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass(frozen=True)
class Overview:
    days: list[DayOfCalls]  # oldest first; the last one is today (UTC)
    backlog: int  # calls waiting for the importer: received, and failed ones waiting to be retried
    oldest_waiting_at: dt.datetime | None
    last_received_at: dt.datetime | None

    @property
    def today(self) -> dict[str, int]:
        return self.days[-1].calls

    @property
    def week(self) -> dict[str, int]:
        totals = dict.fromkeys(self.today, 0)
        for day in self.days[-7:]:
            for state, count in day.calls.items():
                totals[state] += count
        return totals


def overview(
    session: Session, *, days: int = 14, now: dt.datetime | None = None, day_totals: dict[dt.date, int] | None = None
) -> Overview:
    """Calls per state for each of the last `days` days (UTC), the backlog and the last arrival.

    Most calls end `imported`, so that is what the other states leave of a day's total: the
    other states are counted on the (state, received_at) index, which holds few of them, and a
    day's total on the received_at index. A finished day's total never changes (calls are not
    deleted); pass the same `day_totals` dict to each call to count each past day once.
    """
    now = now or utcnow()
    today = now.astimezone(dt.UTC).date()
    totals = day_totals if day_totals is not None else {}
    result = []
    for offset in range(days - 1, -1, -1):
        day = today - dt.timedelta(days=offset)
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        within = (Call.received_at >= start, Call.received_at < start + dt.timedelta(days=1))
        if day not in totals or day >= today:
            totals[day] = session.scalar(sa.select(sa.func.count()).select_from(Call).where(*within)) or 0
        calls = {state.value: 0 for state in CallState}
        rows = session.execute(
            sa.select(Call.state, sa.func.count()).where(Call.state.in_(_UNFINISHED), *within).group_by(Call.state)
        )
        calls.update({state: count for state, count in rows})
        calls[CallState.IMPORTED] = totals[day] - sum(calls.values())
        result.append(DayOfCalls(day, calls))
    waiting, oldest = backlog(session)
    last = session.scalar(sa.select(sa.func.max(Call.received_at)))
    return Overview(result, waiting, oldest, last)
