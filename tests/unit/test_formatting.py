"""cli.formatting: the dates ps and inspect read back, and --format templates."""

from __future__ import annotations

import calendar

import pytest

from reconciler.cli.formatting import human_duration, parse_time, render_template
from reconciler.core import errors


def test_parse_time_of_what_docker_mini_writes():
    assert parse_time("2026-11-28T09:00:00.5Z") == calendar.timegm((2026, 11, 28, 9, 0, 0)) + 0.5
    assert parse_time("2026-11-28T09:00:00.123456789Z") == pytest.approx(calendar.timegm((2026, 11, 28, 9, 0, 0)) + 0.123456)
    assert parse_time("2026-11-28T10:00:00+01:00") == calendar.timegm((2026, 11, 28, 9, 0, 0))
    assert parse_time("2026-11-28T09:00:00") == calendar.timegm((2026, 11, 28, 9, 0, 0))   # UTC


@pytest.mark.parametrize("text", [None, "", "0001-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "yesterday"])
def test_parse_time_of_nothing_or_nonsense_is_none(text):
    assert parse_time(text) is None


@pytest.mark.parametrize("seconds, text", [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (3599, "59 minutes"), (3600, "About an hour"), (47 * 3600, "47 hours"), (3 * 86400, "3 days"), (20 * 86400, "2 weeks"),
])
def test_human_duration_is_docker_s(seconds, text):
    assert human_duration(seconds) == text


def test_template_json_is_compact():
    assert render_template("{{.Name}}\\t{{json .Labels}}", {"Name": "web", "Labels": {"a": "b"}}) == 'web\t{"a":"b"}'


def test_template_fields():
    obj = {"State": {"Running": True, "Pid": 7}, "Config": {"Env": ["A=1"]}}
    assert render_template("{{.State.Running}} {{.State.Pid}} {{.Config.Env}} {{.Nope}}", obj) == \
        'true 7 ["A=1"] <no value>'


def test_template_refuses_what_it_does_not_know():
    with pytest.raises(errors.InvalidArgument):
        render_template("{{range .X}}", {})
