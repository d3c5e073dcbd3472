"""The day-before rule and the send hour, with explicit clocks: DST, month and year ends, holidays."""
from __future__ import annotations

from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.core.dates import BRUSSELS
from bot.core.reminders import PENDING, SKIPPED, ReminderConfigError, plan, reminder_moment, send_hour_from_env

SIX_PM = time(18, 0)


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BRUSSELS)


def test_reminder_goes_out_the_calendar_day_before_at_the_send_hour() -> None:
    moment = reminder_moment(local(2026, 12, 1, 10, 30), SIX_PM)
    assert moment == local(2026, 11, 30, 18)
    assert moment.astimezone(timezone.utc).hour == 17  # winter time: UTC+1


@pytest.mark.parametrize("appointment, reminder", [
    (local(2027, 3, 1, 9), local(2027, 2, 28, 18)),     # month end, common year
    (local(2028, 3, 1, 9), local(2028, 2, 29, 18)),     # leap day
    (local(2026, 12, 1, 9), local(2026, 11, 30, 18)),   # 30-day month
    (local(2027, 1, 2, 9), local(2027, 1, 1, 18)),      # year end: New Year's Day, a holiday, still sends
    (local(2026, 4, 7, 9), local(2026, 4, 6, 18)),      # Easter Monday (holiday, desks closed) still sends
    (local(2026, 12, 7, 9), local(2026, 12, 6, 18)),    # Monday appointment: reminded on Sunday
])
def test_day_before_rule_ignores_month_ends_holidays_and_closing_days(appointment: datetime, reminder: datetime) -> None:
    assert reminder_moment(appointment, SIX_PM) == reminder


def test_reminder_on_the_spring_dst_day_uses_summer_time() -> None:
    # 29 March 2026: clocks go from 02:00 to 03:00; the appointment on Monday is at 09:00 CEST.
    moment = reminder_moment(local(2026, 3, 30, 9), SIX_PM)
    assert moment == local(2026, 3, 29, 18)
    assert moment.astimezone(timezone.utc) == datetime(2026, 3, 29, 16, tzinfo=timezone.utc)


def test_reminder_on_the_autumn_dst_day_uses_winter_time() -> None:
    # 25 October 2026: clocks go from 03:00 back to 02:00.
    moment = reminder_moment(local(2026, 10, 26, 9), SIX_PM)
    assert moment.astimezone(timezone.utc) == datetime(2026, 10, 25, 17, tzinfo=timezone.utc)


def test_reminder_across_dst_keeps_the_local_hour_not_the_utc_offset_of_the_appointment() -> None:
    before, after = reminder_moment(local(2026, 3, 28, 9), SIX_PM), reminder_moment(local(2026, 3, 31, 9), SIX_PM)
    assert (before.hour, after.hour) == (18, 18)
    assert before.utcoffset() != after.utcoffset()


def test_send_hour_inside_the_spring_gap_moves_forward_by_the_gap() -> None:
    moment = reminder_moment(local(2026, 3, 30, 9), time(2, 30))  # 02:30 does not exist on 29 March
    assert moment.astimezone(timezone.utc) == datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)
    assert (moment.hour, moment.minute) == (3, 30)


def test_send_hour_in_the_repeated_autumn_hour_takes_its_first_occurrence() -> None:
    moment = reminder_moment(local(2026, 10, 26, 9), time(2, 30))
    assert moment.astimezone(timezone.utc) == datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)


def test_day_before_is_the_ghent_day_whatever_time_zone_the_appointment_is_given_in() -> None:
    # 00:30 in Ghent on 2 December is still 1 December in UTC and in New York.
    appointment = local(2026, 12, 2, 0, 30)
    for zone in (timezone.utc, ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")):
        assert reminder_moment(appointment.astimezone(zone), SIX_PM) == local(2026, 12, 1, 18)


def test_booking_for_tomorrow_before_the_send_hour_is_reminded() -> None:
    decided = plan(local(2026, 12, 1, 10), now=local(2026, 11, 30, 17, 59), hour=SIX_PM)
    assert (decided.state, decided.due_at) == (PENDING, local(2026, 11, 30, 18))


def test_booking_for_tomorrow_after_the_send_hour_gets_no_reminder() -> None:
    assert plan(local(2026, 12, 1, 10), now=local(2026, 11, 30, 18, 1), hour=SIX_PM).state == SKIPPED


def test_plan_compares_instants_not_wall_clocks_of_different_zones() -> None:
    now = local(2026, 11, 30, 17, 30).astimezone(ZoneInfo("America/New_York"))  # 11:30 in New York
    assert plan(local(2026, 12, 1, 10), now=now, hour=SIX_PM).state == PENDING


@pytest.mark.parametrize("raw, expected", [("", SIX_PM), ("9", time(9)), ("18:30", time(18, 30)),
                                           (" 07:05 ", time(7, 5)), ("0", time(0))])
def test_send_hour_comes_from_the_environment(raw: str, expected: time) -> None:
    assert send_hour_from_env({"GENTINFO_REMINDER_HOUR": raw}) == expected


@pytest.mark.parametrize("raw", ["24", "18:60", "zes uur", "-1", "18:3x", "1.5"])
def test_bad_send_hour_is_refused_with_the_variable_name(raw: str) -> None:
    with pytest.raises(ReminderConfigError, match="GENTINFO_REMINDER_HOUR"):
        send_hour_from_env({"GENTINFO_REMINDER_HOUR": raw})
