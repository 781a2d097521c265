"""cli.formatting: the dates ps and inspect read back, and --format templates."""

from __future__ import annotations

import calendar
import datetime

import pytest

from reconciler.cli.formatting import days_since_epoch, parse_time, render_template


def test_days_since_epoch_agrees_with_datetime_over_four_centuries():
    epoch = datetime.date(1970, 1, 1)
    day = datetime.date(1800, 1, 1)
    while day.year < 2200:
        assert days_since_epoch(day.year, day.month, day.day) == (day - epoch).days, day
        day += datetime.timedelta(days=1)


@pytest.mark.parametrize("year, month, day", [
    (2026, 2, 29), (1900, 2, 29), (2026, 4, 31), (2026, 13, 1), (2026, 0, 10), (2026, 1, 0), (0, 1, 1),
])
def test_days_since_epoch_refuses_dates_that_do_not_exist(year, month, day):
    assert days_since_epoch(year, month, day) is None


def test_leap_days_exist():
    assert days_since_epoch(2000, 2, 29) == days_since_epoch(2000, 3, 1) - 1
    assert days_since_epoch(2024, 2, 29) is not None


def test_parse_time_of_what_docker_mini_writes():
    assert parse_time("2026-11-28T09:00:00.5Z") == calendar.timegm((2026, 11, 28, 9, 0, 0)) + 0.5


def test_template_json_is_compact():
    assert render_template("{{.Name}}\\t{{json .Labels}}", {"Name": "web", "Labels": {"a": "b"}}) == 'web\t{"a":"b"}'
