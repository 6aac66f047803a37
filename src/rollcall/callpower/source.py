"""CallPower as a source of calls: its contract, as the call pipeline needs it (`calls.source`).

A body is read as CallPower sends one (`bodies`), validated by the one validator
(`record.parse_call`), completed by its campaign's defaults (`campaigns`), keyed by its
normalized record (`record.dedup_key_of`); a stored record is a caller's number, a CallPower
campaign, a time and a post's details.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from rollcall.callpower import bodies, campaigns
from rollcall.callpower.record import (
    CONTRACT_FIELDS,
    CallRecord,
    InvalidCall,
    call_timestamp_of,
    campaign_id_of,
    dedup_key_of,
    lacks_defaultable,
    mobile_of,
    parse_call,
    with_defaults,
)
from rollcall.calls.source import CallFacts, Delivery, Refusal, Reported
from rollcall.config import Settings

# File imports keep each line as JSON text (a CSV row as the object of its fields): what they
# were stored with, to be read back the same way.
JSON_LINES = "application/x-ndjson"
CSV_ROWS = "text/csv"


@dataclass(frozen=True)
class CallPower:
    """The CallPower contract as a `calls.source.Source`; `region` reads national numbers."""

    region: str = "US"

    @classmethod
    def of(cls, settings: Settings) -> CallPower:
        return cls(settings.default_region)

    @property
    def fields(self) -> tuple[str, ...]:
        return CONTRACT_FIELDS

    def delivery(self, body: bytes, content_type: str | None) -> Delivery:
        raw = bodies.raw_text(body)
        try:
            payload = bodies.decode_payload(body, content_type)
        except bodies.UnreadableBody as problem:
            return self.unreadable(problem.refusal, str(problem), raw=raw, content_type=content_type)
        return self.check(payload, raw=raw, content_type=content_type)

    def unreadable(self, refusal: Refusal, problem: str, *, raw: str, content_type: str | None) -> Delivery:
        """A body that could not be read at all; its mobile, if it names one (`bodies.mobile_in_text`)."""
        return Delivery(
            raw,
            content_type,
            errors={"body": [problem]},
            refusal=refusal,
            mobile=bodies.mobile_in_text(raw, self.region),
        )

    def check(
        self, payload: Any, *, raw: str, content_type: str | None, defaults: Mapping[str, str] | None = None
    ) -> Delivery:
        """Validate a decoded payload; an invalid one becomes a refused delivery, never an exception.

        With `defaults` (its CallPower campaign's), missing descriptive fields are completed
        first. Without, a payload that lacks one of them is marked `completable`.
        """
        defaulted: list[str] = []
        completable = None
        if isinstance(payload, dict):
            if defaults is not None:
                payload, defaulted = with_defaults(payload, defaults)
            elif lacks_defaultable(payload):
                completable = payload
        try:
            record = parse_call(payload, region=self.region)
        except InvalidCall as invalid:
            campaign = campaign_id_of(payload)
            return Delivery(
                raw,
                content_type,
                errors=invalid.fields,
                refusal=Refusal.INVALID,
                campaign_id=campaign,
                mobile=mobile_of(payload, self.region),
                call_timestamp=call_timestamp_of(payload),
                completable=completable if campaign is not None else None,
            )
        document = record.to_document()
        return Delivery(
            raw,
            content_type,
            document,
            campaign_id=record.callpower_campaign_id,
            campaign_name=record.callpower_campaign_name,
            mobile=record.mobile,
            call_timestamp=record.call_timestamp,
            defaulted=defaulted or None,
            completable=completable,
        )

    def read_back(self, raw: str, content_type: str | None) -> dict[str, Any] | None:
        try:
            if content_type in (JSON_LINES, CSV_ROWS):
                payload = bodies.decode_json(raw.encode("utf-8"))
            else:
                payload = bodies.decode_payload(raw.encode("utf-8"), content_type)
        except bodies.UnreadableBody:
            return None
        return payload if isinstance(payload, dict) else None

    def dedup_key(self, document: dict[str, Any], secret: bytes) -> str:
        return dedup_key_of(document, secret)

    def defaults_of(self, session: Session, campaign_ids: Collection[int | None]) -> dict[int, dict[str, str]]:
        return campaigns.defaults_of(session, campaign_ids)

    def note_stored(self, session: Session, stored: Sequence[Delivery], received_at: dt.datetime) -> None:
        campaigns.note_stored_calls(session, stored, received_at)

    def facts(self, document: dict[str, Any]) -> CallFacts:
        record = CallRecord.from_document(document)
        return CallFacts(
            mobile=record.mobile,
            campaign_id=record.callpower_campaign_id,
            call_timestamp=record.call_timestamp,
            anonymous=record.is_anonymous,
            completed=record.is_completed,
            details=record.post_details(),
            status=record.status,
            seconds=record.call_duration,
            target=(record.campaign_target_name, record.campaign_target_title, record.campaign_target_district),
        )

    @staticmethod
    def reported(details: dict[str, Any]) -> Reported:
        """What a post's details (`CallRecord.post_details`) say for the results: status,
        seconds, target (the recount of `reports.figures.rebuild`)."""
        seconds = details.get("call_duration")
        return (
            str(details.get("status_details") or ""),
            seconds if isinstance(seconds, int) else 0,
            (
                details.get("campaign_target_name"),
                details.get("campaign_target_title"),
                details.get("campaign_target_district"),
            ),
        )
