"""Working days, Day N, cut-offs and clock changes, by worked example and by property."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.process.preset import Preset, load_preset
from bot.process.timeline import add_months, plan
from bot.process.working_days import (
    LONDON,
    WorkingCalendar,
    WorkingHours,
    london_time,
    parse_instant,
)

CALENDAR = WorkingCalendar()


def london(text: str) -> datetime:
    return parse_instant(text)


def local(instant: datetime) -> str:
    return instant.astimezone(LONDON).strftime("%a %d %b %Y %H:%M %Z")


# Worked example 1: a Friday referral across Christmas, the Boxing Day substitute and New Year.
def test_friday_before_christmas_2026_counts_past_the_bank_holidays() -> None:
    # Given a referral at 10:00 on Friday 18 December 2026,
    day0 = CALENDAR.day0(london("2026-12-18T10:00"))
    # then Day 0 is that Friday, and Days 1, 7 and 15 fall as the spec works out by hand:
    # 25 Dec (Fri), 28 Dec (Boxing Day substitute) and 1 Jan are bank holidays.
    assert day0 == date(2026, 12, 18)
    assert CALENDAR.day_n(day0, 1) == date(2026, 12, 21)
    assert CALENDAR.day_n(day0, 4) == date(2026, 12, 24)
    assert CALENDAR.day_n(day0, 5) == date(2026, 12, 29)
    assert CALENDAR.day_n(day0, 7) == date(2026, 12, 31)
    assert CALENDAR.day_n(day0, 8) == date(2027, 1, 4)
    assert CALENDAR.day_n(day0, 15) == date(2027, 1, 13)
    assert CALENDAR.bank_holiday_name(date(2026, 12, 28)) is not None


def test_oldham_plan_for_the_christmas_referral_has_4pm_cut_offs_in_gmt() -> None:
    # Given Oldham's preset and the same Friday referral,
    case_plan = plan(load_preset("oldham"), CALENDAR, london("2026-12-18T10:00"))
    # then the milestones fall on the documented days at the documented hours.
    assert local(case_plan.due("partner_decision")) == "Mon 21 Dec 2026 17:00 GMT"
    assert local(case_plan.due("agency_requests")) == "Tue 22 Dec 2026 17:00 GMT"
    assert local(case_plan.due("agency_returns_due")) == "Thu 31 Dec 2026 17:00 GMT"
    assert local(case_plan.due("partner_signoff")) == "Tue 12 Jan 2027 16:00 GMT"
    assert case_plan.due("submit_national_panel") == datetime(2027, 1, 13, 16, tzinfo=UTC)
    assert case_plan.get("submit_national_panel").day == 15


def test_closure_dates_push_days_later() -> None:
    # Given a partnership closed from 29 to 31 December,
    closed = WorkingCalendar.build([date(2026, 12, 29), date(2026, 12, 30), date(2026, 12, 31)])
    # then Day 5 of the Christmas referral moves from 29 Dec to 4 Jan.
    assert closed.day_n(date(2026, 12, 18), 5) == date(2027, 1, 4)
    assert closed.day_n(date(2026, 12, 18), 15) == date(2027, 1, 18)


# Worked example 2: Easter 2027 and the change to BST in one window.
def test_a_partnership_closing_at_half_past_four_has_its_days_end_then() -> None:
    # Given a partnership whose working day ends at 16:30,
    early = WorkingCalendar(hours=WorkingHours(time(8, 30), time(16, 30)))
    case_plan = plan(load_preset("oldham"), early, london("2026-12-18T10:00"))
    # then "by Day 1" means by 16:30, while a stated hour (4pm on Day 15) stays as written.
    assert local(case_plan.due("partner_decision")) == "Mon 21 Dec 2026 16:30 GMT"
    assert local(case_plan.due("agency_returns_due")) == "Thu 31 Dec 2026 16:30 GMT"
    assert local(case_plan.due("submit_national_panel")) == "Wed 13 Jan 2027 16:00 GMT"


def test_easter_and_bst_in_one_window() -> None:
    # Given a referral on Thursday 25 March 2027; Good Friday is 26 March, BST starts Sunday
    # 28 March, Easter Monday is 29 March,
    case_plan = plan(load_preset("oldham"), CALENDAR, london("2027-03-25T15:30"))
    # then Day 1 is Tuesday 30 March, and the 4pm cut-offs are 15:00 UTC in BST.
    assert CALENDAR.day_n(case_plan.day0, 1) == date(2027, 3, 30)
    assert local(case_plan.due("partner_decision")) == "Tue 30 Mar 2027 17:00 BST"
    assert case_plan.due("partner_decision") == datetime(2027, 3, 30, 16, tzinfo=UTC)
    # Day 1 Tue 30 Mar, Day 4 Fri 2 Apr, Day 9 Fri 9 Apr, Day 14 Fri 16 Apr, Day 15 Mon 19 Apr.
    assert CALENDAR.day_n(case_plan.day0, 15) == date(2027, 4, 19)
    assert case_plan.due("submit_national_panel") == datetime(2027, 4, 19, 15, tzinfo=UTC)


def test_clock_start_late_on_the_night_bst_ends_is_dated_in_london() -> None:
    # Given events late on Saturday 30 October 2027, the night BST ends (01:00 UTC Sunday),
    # then 22:30 UTC is 23:30 BST on the Saturday, and 23:30 UTC is already Sunday in London.
    assert CALENDAR.day0(datetime(2027, 10, 30, 22, 30, tzinfo=UTC)) == date(2027, 10, 30)
    assert CALENDAR.day0(datetime(2027, 10, 30, 23, 30, tzinfo=UTC)) == date(2027, 10, 31)
    # A week later, in GMT, 23:30 UTC is still Saturday.
    assert CALENDAR.day0(datetime(2027, 11, 6, 23, 30, tzinfo=UTC)) == date(2027, 11, 6)


# Worked example 3: a referral on a Saturday.
def test_saturday_referral_has_day0_on_the_saturday() -> None:
    # Given a referral at 21:00 on Saturday 6 February 2027,
    case_plan = plan(load_preset("warrington"), CALENDAR, london("2027-02-06T21:00"))
    # then Day 0 is the Saturday and Day 1 the Monday; Warrington's returns are Day 9.
    assert case_plan.day0 == date(2027, 2, 6)
    assert CALENDAR.day_n(case_plan.day0, 1) == date(2027, 2, 8)
    assert local(case_plan.due("agency_returns_due")) == "Thu 18 Feb 2027 17:00 GMT"
    assert local(case_plan.due("submit_national_panel")) == "Fri 26 Feb 2027 17:00 GMT"


# Worked example 4: Doncaster, clock from the notification, with its 48-hour steps.
def test_doncaster_counts_from_notification_with_48_hour_steps() -> None:
    # Given Doncaster's notification to the National Panel at 14:00 on Wednesday 3 Feb 2027,
    doncaster = load_preset("doncaster")
    assert doncaster.clock_starts == "national_panel_notified"
    case_plan = plan(doncaster, CALENDAR, london("2027-02-03T14:00"))
    # then the CRG meeting is 48 clock hours later, Friday 14:00,
    assert local(case_plan.due("partner_decision")) == "Fri 05 Feb 2027 14:00 GMT"
    # requests go by Day 5 (Wed 10 Feb) and returns are due five working days later,
    assert local(case_plan.due("agency_requests")) == "Wed 10 Feb 2027 17:00 GMT"
    assert local(case_plan.due("agency_returns_due")) == "Wed 17 Feb 2027 17:00 GMT"
    # the meeting is two working days after that, the draft at noon the next working day,
    assert local(case_plan.due("rr_meeting")) == "Fri 19 Feb 2027 17:00 GMT"
    assert local(case_plan.due("draft_report")) == "Mon 22 Feb 2027 12:00 GMT"
    # sign-off is 48 clock hours after the draft, and submission by the 15th working day.
    assert local(case_plan.due("partner_signoff")) == "Wed 24 Feb 2027 12:00 GMT"
    assert local(case_plan.due("submit_national_panel")) == "Wed 24 Feb 2027 17:00 GMT"


def test_a_step_counted_from_another_follows_when_that_one_was_actually_done() -> None:
    # Given Doncaster's requests actually sent on Day 3 instead of Day 5,
    doncaster = load_preset("doncaster")
    sent = london("2027-02-08T11:00")
    case_plan = plan(doncaster, CALENDAR, london("2027-02-03T14:00"), {"agency_requests": sent})
    # then the returns fall five working days after the real request.
    assert local(case_plan.due("agency_returns_due")) == "Mon 15 Feb 2027 17:00 GMT"


def test_forty_eight_hours_across_the_clock_change_are_elapsed_hours() -> None:
    # Given a Doncaster notification at 12:00 GMT on Friday 26 March 2027 (BST starts on 28th),
    case_plan = plan(load_preset("doncaster"), CALENDAR, london("2027-03-26T12:00"))
    # then 48 elapsed hours later the London clock reads 13:00 BST on Sunday.
    assert local(case_plan.due("partner_decision")) == "Sun 28 Mar 2027 13:00 BST"


def test_wall_clock_in_the_spring_gap_moves_forward() -> None:
    # Given 01:30 on 28 March 2027, which London skips,
    instant = CALENDAR.at(date(2027, 3, 28), time(1, 30))
    # then the instant is the first one after the gap.
    assert instant == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    assert instant.astimezone(LONDON).hour == 2


def test_naive_instants_are_refused_and_offsetless_text_is_london() -> None:
    with pytest.raises(ValueError, match="naive"):
        CALENDAR.day0(datetime(2026, 12, 18, 10))
    assert parse_instant("2026-07-01T09:00").utcoffset() == timedelta(hours=1)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_instant("next Tuesday")


@pytest.mark.parametrize("text", ["0027-01-11T10:00", "9999-12-31T23:59", "1999-12-31"])
def test_an_instant_in_an_implausible_year_is_refused_with_the_reason(text: str) -> None:
    # A year typed as 0027 for 2027 would be audited in year 27; 9999 would overflow.
    with pytest.raises(ValueError, match="between the years 2000 and 2100"):
        parse_instant(text)


def test_add_months_keeps_the_day_where_it_exists() -> None:
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2026, 8, 15), 6) == date(2027, 2, 15)


def test_next_working_moment() -> None:
    # Given a Saturday afternoon, the next working moment is Monday 09:00.
    assert local(CALENDAR.next_working_moment(london("2027-02-06T15:00"))) == (
        "Mon 08 Feb 2027 09:00 GMT"
    )
    # Inside working hours, the instant itself.
    inside = london("2027-02-08T10:15")
    assert CALENDAR.next_working_moment(inside) == inside


# Properties over start instants from 2025 to 2030.
START = datetime(2025, 1, 1, tzinfo=UTC)
instants = st.integers(min_value=0, max_value=6 * 365 * 24 * 60).map(
    lambda minutes: START + timedelta(minutes=minutes)
)
closures = st.frozensets(
    st.integers(min_value=0, max_value=6 * 365).map(lambda days: date(2025, 1, 1)
                                                    + timedelta(days=days)),
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(start=instants, n=st.integers(min_value=1, max_value=30), closed=closures)
def test_day_n_is_always_a_working_day_and_counts_exactly(
    start: datetime, n: int, closed: frozenset[date]
) -> None:
    calendar = WorkingCalendar.build(closed)
    day0 = calendar.day0(start)
    day_n = calendar.day_n(day0, n)
    # Day N is never a weekend, a bank holiday or a closure date,
    assert day_n.weekday() < 5
    assert calendar.bank_holiday_name(day_n) is None
    assert day_n not in closed
    # Day N+1 comes after Day N,
    assert calendar.day_n(day0, n + 1) > day_n
    # and exactly N working days lie in (Day 0, Day N].
    assert calendar.working_days_between(day0, day_n) == n
    assert calendar.day_number(day0, day_n) == n


@settings(max_examples=300, deadline=None)
@given(start=instants, n=st.integers(min_value=0, max_value=20))
def test_cut_off_instants_carry_the_london_offset_of_their_date(start: datetime, n: int) -> None:
    day_n = CALENDAR.day_n(CALENDAR.day0(start), n)
    cut_off = CALENDAR.at(day_n, time(16, 0))
    in_london = cut_off.astimezone(LONDON)
    # The cut-off reads 16:00 on Day N in London, and its UTC offset is BST's in summer.
    assert (in_london.date(), in_london.time()) == (day_n, time(16, 0))
    expected_offset = timedelta(hours=1) if _is_bst(day_n) else timedelta(0)
    assert in_london.utcoffset() == expected_offset
    assert cut_off.utcoffset() == timedelta(0)


def _is_bst(day: date) -> bool:
    # BST runs from the last Sunday of March to the last Sunday of October (from 01:00 UTC).
    def last_sunday(month: int) -> date:
        last = date(day.year, month, 31)
        return last - timedelta(days=(last.weekday() + 1) % 7)

    return last_sunday(3) <= day < last_sunday(10)


@settings(max_examples=100, deadline=None)
@given(start=instants)
def test_every_preset_plan_is_dated_in_order(start: datetime) -> None:
    for name in ("oldham", "warrington", "bolton", "doncaster", "bradford"):
        case_plan = plan(load_preset(name), CALENDAR, start)
        # Sign-off never comes after the submission, and no milestone precedes Day 0.
        assert case_plan.due("partner_signoff") <= case_plan.due("submit_national_panel")
        assert all(
            CALENDAR.local_date(m.due) >= case_plan.day0 for m in case_plan.milestones
        )


def test_a_step_counted_before_another_moves_with_a_date_set_by_hand() -> None:
    # Given Oldham's plan with a local review decided at 14:00 on Wednesday 9 June 2027,
    preset = load_preset("oldham")
    calendar = WorkingCalendar()
    decided = parse_instant("2027-06-09T14:00")
    dated = plan(preset, calendar, parse_instant("2027-05-17T10:00"),
                 done={"local_review_commissioned": decided},
                 fixed={"local_review_publication": calendar.at(date(2027, 9, 2))})
    # then completion is six months on, and the final report seven working days before
    # the publication date set by hand, across the August bank holiday.
    local = {m.key: m.due.astimezone(LONDON).strftime("%a %d %b %Y %H:%M")
             for m in dated.milestones}
    assert local["local_review_completion"] == "Thu 09 Dec 2027 17:00"
    assert local["local_review_publication"] == "Thu 02 Sep 2027 17:00"
    assert local["local_review_final_report"] == "Mon 23 Aug 2027 17:00"
    # A step counted before another must say how many working days.
    document = preset.model_dump()
    document["milestones"][-1] = {"key": "local_review_final_report", "label": "Report",
                                  "before": "local_review_publication", "months": 1}
    with pytest.raises(ValueError, match="'before' takes working_days"):
        Preset.model_validate(document)


@pytest.mark.parametrize(("instant", "words"), [
    # A 16:00 cut-off in British Summer Time is stored as 15:00 UTC.
    ("2027-06-11T15:00:00+00:00", "16:00 on Friday 11 June 2027"),
    ("2027-01-21T17:00:00+00:00", "17:00 on Thursday 21 January 2027"),
    # The last instant of summer time, and the first of winter time, an hour later in UTC.
    ("2027-10-31T00:59:00+00:00", "01:59 on Sunday 31 October 2027"),
    ("2027-10-31T01:00:00+00:00", "01:00 on Sunday 31 October 2027"),
])
def test_an_instant_is_shown_to_people_in_london_time_in_words(instant: str, words: str) -> None:
    # Given an instant in UTC, when it is shown to a person, then it is London time in words.
    assert london_time(datetime.fromisoformat(instant)) == words
