"""The call record's rules, exercised on `parse_call`, the one validator every interface uses."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from rollcall.callpower.record import ANONYMOUS_MOBILES, InvalidCall, parse_call
from tests.helpers import SEED_CALL

UTC = dt.UTC


@pytest.mark.parametrize(
    ("sent", "meant"),
    [
        ("2017-11-07 18:54:10.829655", dt.datetime(2017, 11, 7, 18, 54, 10, 829655, tzinfo=UTC)),
        ("2017-11-07T18:54:10.829655", dt.datetime(2017, 11, 7, 18, 54, 10, 829655, tzinfo=UTC)),
        ("2017-11-07T18:54:10", dt.datetime(2017, 11, 7, 18, 54, 10, tzinfo=UTC)),
        ("2017-11-07T18:54:10+00:00", dt.datetime(2017, 11, 7, 18, 54, 10, tzinfo=UTC)),
        ("2017-11-07T18:54:10Z", dt.datetime(2017, 11, 7, 18, 54, 10, tzinfo=UTC)),
        ("2017-11-07 13:54:10.5-05:00", dt.datetime(2017, 11, 7, 18, 54, 10, 500000, tzinfo=UTC)),
        (" 2017-11-07T18:54:10 ", dt.datetime(2017, 11, 7, 18, 54, 10, tzinfo=UTC)),
    ],
)
def test_timestamp_forms_callpower_sends(sent: str, meant: dt.datetime) -> None:
    assert parse_call({**SEED_CALL, "call_timestamp": sent}).call_timestamp == meant


@pytest.mark.parametrize("mobile", sorted(ANONYMOUS_MOBILES))
def test_anonymous_placeholders_are_accepted_input(mobile: str) -> None:
    record = parse_call({**SEED_CALL, "mobile": mobile})
    assert record.is_anonymous
    assert record.mobile == mobile


@pytest.mark.parametrize(
    ("sent", "normalized"),
    [
        ("+15551231234", "+15551231234"),  # possible but unassigned: accepted
        ("2224567891", "+12224567891"),
        ("(222) 456-7891", "+12224567891"),
        (2224567891, "+12224567891"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_mobile_is_normalized_to_e164(sent: object, normalized: str) -> None:
    assert parse_call({**SEED_CALL, "mobile": sent}).mobile == normalized


def test_optional_fields_may_be_absent_null_or_blank() -> None:
    for value in (None, "", "   "):
        record = parse_call({**SEED_CALL, "campaign_target_name": value, "campaign_target_district": value})
        assert (record.campaign_target_name, record.campaign_target_district) == (None, None)
    trimmed = {k: v for k, v in SEED_CALL.items() if k not in ("campaign_target_name", "campaign_target_district")}
    assert parse_call(trimmed).campaign_target_district is None


def test_integers_may_come_as_strings_or_integral_numbers() -> None:
    record = parse_call({**SEED_CALL, "callpower_campaign_id": "4", "call_duration": "0"})
    assert (record.callpower_campaign_id, record.call_duration) == (4, 0)
    record = parse_call({**SEED_CALL, "callpower_campaign_id": 4.0, "call_duration": 36.0})
    assert (record.callpower_campaign_id, record.call_duration) == (4, 36)


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(InvalidCall) as raised:
        parse_call({})
    assert sorted(raised.value.fields) == sorted(
        [
            "mobile",
            "callpower_campaign_id",
            "status",
            "call_timestamp",
            "call_duration",
            "campaign_target_title",
            "callpower_campaign_name",
            "number_dialed_into",
        ]
    )


def test_dedup_key_ignores_form_but_not_substance() -> None:
    same = parse_call(
        {**SEED_CALL, "status": "COMPLETED ", "call_timestamp": "2017-11-07T18:54:10.829655Z", "call_duration": "36"}
    )
    other_leg = parse_call({**SEED_CALL, "campaign_target_name": "Donald Duck"})
    later = parse_call({**SEED_CALL, "call_timestamp": "2017-11-07 18:54:11"})
    secret = b"a database's dedup secret"
    key = parse_call(SEED_CALL).dedup_key(secret)
    assert same.dedup_key(secret) == key
    assert other_leg.dedup_key(secret) != key
    assert later.dedup_key(secret) != key
    # Keyed: another database's secret makes another key, and no key reveals the number.
    assert parse_call(SEED_CALL).dedup_key(b"another secret") != key
    digits = SEED_CALL["mobile"].lstrip("+")
    assert digits not in key and hashlib.sha256(digits.encode()).hexdigest() not in key
