"""Dutch date wishes as citizens type them, parsed against a fixed "now"."""
from __future__ import annotations

from datetime import date, datetime, time, timezone

import pytest
from hypothesis import given, settings, strategies as st

from bot.core.dates import (BRUSSELS, DateErrorKind, DateParseError, DateRequest, format_day, format_moment,
                            format_time, parse_date_request)

WEDNESDAY = datetime(2026, 11, 25, 10, 0, tzinfo=BRUSSELS)  # woensdag 25 november 2026


@pytest.mark.parametrize("text, expected", [
    ("morgen", DateRequest(day=date(2026, 11, 26))),
    ("Morgen.", DateRequest(day=date(2026, 11, 26))),
    ("overmorgen", DateRequest(day=date(2026, 11, 27))),
    ("vandaag", DateRequest(day=date(2026, 11, 25))),
    ("dinsdag", DateRequest(day=date(2026, 12, 1))),
    ("donderdag", DateRequest(day=date(2026, 11, 26))),
    ("woensdag", DateRequest(day=date(2026, 12, 2))),  # today's weekday means next week's
    ("deze vrijdag", DateRequest(day=date(2026, 11, 27))),
    ("volgende dinsdag", DateRequest(day=date(2026, 12, 1))),
    ("volgende donderdag", DateRequest(day=date(2026, 12, 3))),  # the Thursday of next week
    ("volgende week dinsdag", DateRequest(day=date(2026, 12, 1))),
    ("dinsdag volgende week", DateRequest(day=date(2026, 12, 1))),
    ("14 december", DateRequest(day=date(2026, 12, 14))),
    ("14/12", DateRequest(day=date(2026, 12, 14))),
    ("14.12", DateRequest(day=date(2026, 12, 14))),
    ("14-12-2026", DateRequest(day=date(2026, 12, 14))),
    ("2026-12-14", DateRequest(day=date(2026, 12, 14))),
    ("15 januari", DateRequest(day=date(2027, 1, 15))),
    ("vrijdag 27/11", DateRequest(day=date(2026, 11, 27))),
    ("25 november", DateRequest(day=date(2026, 11, 25))),  # today, not next year
    ("de 3de", DateRequest(day=date(2026, 12, 3))),  # the 3rd has passed this month
    ("de 3e", DateRequest(day=date(2026, 12, 3))),
    ("op de 30ste", DateRequest(day=date(2026, 11, 30))),  # still to come this month
    ("de 31ste", DateRequest(day=date(2026, 12, 31))),  # November has no 31st
    ("de 3de december", DateRequest(day=date(2026, 12, 3))),
    ("3", DateRequest(day=date(2026, 12, 3))),
    ("graag op dinsdag", DateRequest(day=date(2026, 12, 1))),
    ("liefst morgen aub", DateRequest(day=date(2026, 11, 26))),
    ("ik kan enkel op 14 december", DateRequest(day=date(2026, 12, 14))),
    ("na 15u", DateRequest(after=time(15))),
    ("na 15 uur", DateRequest(after=time(15))),
    ("vanaf 9u30", DateRequest(after=time(9, 30))),
    ("voor 11 uur", DateRequest(before=time(11))),
    ("vóór 11u", DateRequest(before=time(11))),
    ("tussen 10 en 12u", DateRequest(after=time(10), before=time(12))),
    ("morgen na 14u", DateRequest(day=date(2026, 11, 26), after=time(14))),
    ("morgen om 10 uur", DateRequest(day=date(2026, 11, 26), after=time(10))),
    ("morgen 14u30", DateRequest(day=date(2026, 11, 26), after=time(14, 30))),
    ("'s middags", DateRequest(after=time(12))),
    ("’s namiddags", DateRequest(after=time(12))),
    ("voormiddag", DateRequest(before=time(12))),
    ("'s avonds", DateRequest(after=time(17))),
    ("dinsdagvoormiddag", DateRequest(day=date(2026, 12, 1), before=time(12))),
    ("donderdagnamiddag", DateRequest(day=date(2026, 11, 26), after=time(12))),
    ("morgenvroeg", DateRequest(day=date(2026, 11, 26), before=time(12))),
    ("maandagmorgen", DateRequest(day=date(2026, 11, 30), before=time(12))),
    ("vanmiddag", DateRequest(day=date(2026, 11, 25), after=time(12))),
    ("zo snel mogelijk", DateRequest(asap=True)),
    ("Zo vlug mogelijk!", DateRequest(asap=True)),
    ("eerst mogelijke", DateRequest(asap=True)),
    ("het eerste vrije moment", DateRequest(asap=True)),
    ("maakt niet uit", DateRequest(asap=True)),
    ("zo snel mogelijk na 15u", DateRequest(asap=True, after=time(15))),
    ("volgende week", DateRequest(from_day=date(2026, 11, 30))),
    ("vanaf 14 december", DateRequest(from_day=date(2026, 12, 14))),
    ("na dinsdag", DateRequest(from_day=date(2026, 12, 2))),
])
def test_dutch_phrasings_become_date_requests(text: str, expected: DateRequest) -> None:
    assert parse_date_request(text, WEDNESDAY) == expected


@pytest.mark.parametrize("text", ["gisteren", "eergisteren", "24 november", "24/11", "1 januari 2025"])
def test_days_that_passed_are_reported_as_past(text: str) -> None:
    result = parse_date_request(text, WEDNESDAY)
    assert isinstance(result, DateParseError) and result.kind is DateErrorKind.past


@pytest.mark.parametrize("text", ["blabla", "", "   ", "31 november", "om 25u", "14:75", "de 45ste",
                                  "na 14u in de voormiddag", "blabla na 15u", "de 3de blabla"])
def test_nonsense_and_impossible_wishes_are_unparseable(text: str) -> None:
    result = parse_date_request(text, WEDNESDAY)
    assert isinstance(result, DateParseError) and result.kind is DateErrorKind.unparseable


def test_dates_roll_over_into_the_next_year() -> None:
    new_years_eve = datetime(2026, 12, 31, 9, 0, tzinfo=BRUSSELS)
    assert parse_date_request("morgen", new_years_eve) == DateRequest(day=date(2027, 1, 1))
    assert parse_date_request("de 3de", new_years_eve) == DateRequest(day=date(2027, 1, 3))
    assert parse_date_request("14 januari", new_years_eve) == DateRequest(day=date(2027, 1, 14))


def test_now_is_read_in_brussels_time() -> None:
    # 23:30 UTC on 25 November is already 26 November in Ghent; a naive "now" is Ghent time.
    assert parse_date_request("morgen", datetime(2026, 11, 25, 23, 30, tzinfo=timezone.utc)) == \
        DateRequest(day=date(2026, 11, 27))
    assert parse_date_request("morgen", datetime(2026, 11, 25, 23, 30)) == DateRequest(day=date(2026, 11, 26))


def test_errors_have_dutch_messages_for_citizens() -> None:
    past = parse_date_request("gisteren", WEDNESDAY)
    unparseable = parse_date_request("blabla", WEDNESDAY)
    assert isinstance(past, DateParseError) and "voorbij" in past.message_nl
    assert isinstance(unparseable, DateParseError) and "morgen" in unparseable.message_nl


def test_request_survives_a_round_trip_through_a_rasa_slot() -> None:
    request = DateRequest(day=date(2026, 12, 1), after=time(14, 30), before=time(16), asap=True,
                          from_day=date(2026, 11, 30))
    assert DateRequest.from_dict(request.to_dict()) == request
    assert DateRequest.from_dict(DateRequest().to_dict()) == DateRequest()


def test_time_window_accepts_start_at_after_and_refuses_start_at_before() -> None:
    request = DateRequest(after=time(10), before=time(12))
    assert request.accepts(time(10)) and request.accepts(time(11, 45))
    assert not request.accepts(time(9, 45)) and not request.accepts(time(12))


def test_dutch_formatting_of_days_and_times() -> None:
    assert format_day(date(2026, 12, 1)) == "dinsdag 1 december"
    assert format_day(date(2027, 1, 4), with_year=True) == "maandag 4 januari 2027"
    assert format_time(time(9)) == "9 uur"
    assert format_time(time(13, 5)) == "13.05 uur"
    assert format_moment(datetime(2026, 12, 1, 7, 30, tzinfo=timezone.utc)) == "dinsdag 1 december om 8.30 uur"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_any_text_gives_a_request_or_an_error_never_a_past_day(text: str) -> None:
    result = parse_date_request(text, WEDNESDAY)
    assert isinstance(result, (DateRequest, DateParseError))
    if isinstance(result, DateRequest):
        assert result.day is None or result.day >= WEDNESDAY.date()
        assert result.from_day is None or result.from_day > WEDNESDAY.date()
