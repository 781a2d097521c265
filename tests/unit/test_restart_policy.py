"""Restart policies as data: (policy, exit code, restarts so far, stopped by hand) -> restart?"""

from __future__ import annotations

import pytest

from reconciler.core.errors import InvalidArgument
from reconciler.core.restart import (MAX_DELAY, RestartPolicy, backoff_expired, exit_delay,
                                     next_delay, should_restart)

PARSE = [
    (None, RestartPolicy("no")),
    ("", RestartPolicy("no")),
    ("no", RestartPolicy("no")),
    ("always", RestartPolicy("always")),
    ("unless-stopped", RestartPolicy("unless-stopped")),
    ("on-failure", RestartPolicy("on-failure")),
    ("on-failure:3", RestartPolicy("on-failure", 3)),
]


@pytest.mark.parametrize("text,expected", PARSE)
def test_parse(text, expected):
    assert RestartPolicy.parse(text) == expected
    if text:
        assert str(expected) == text


@pytest.mark.parametrize("text", ["sometimes", "always:3", "on-failure:x", "on-failure:", "no:1"])
def test_parse_refuses(text):
    with pytest.raises(InvalidArgument):
        RestartPolicy.parse(text)


DECIDE = [
    # policy, exit code, restart count, stopped by hand, restart?
    ("no", 1, 0, False, False),
    ("always", 0, 0, False, True),
    ("always", 1, 100, False, True),
    ("always", 1, 0, True, False),
    ("unless-stopped", 0, 0, False, True),
    ("unless-stopped", 0, 0, True, False),
    ("on-failure", 0, 0, False, False),
    ("on-failure", None, 0, False, False),
    ("on-failure", 2, 0, False, True),
    ("on-failure", 2, 50, False, True),
    ("on-failure:3", 2, 2, False, True),
    ("on-failure:3", 2, 3, False, False),
    ("on-failure:3", 2, 0, True, False),
]


@pytest.mark.parametrize("policy,code,count,by_hand,expected", DECIDE)
def test_should_restart(policy, code, count, by_hand, expected):
    assert should_restart(RestartPolicy.parse(policy), code, count, by_hand) is expected


def test_backoff_doubles_to_a_ceiling_and_expires_after_a_clean_run():
    delays = [next_delay(None)]
    for _ in range(12):
        delays.append(next_delay(delays[-1]))
    assert delays[:3] == [1.0, 2.0, 4.0]
    assert delays[-1] == MAX_DELAY
    assert not backoff_expired(1000.0, 4.0, 1000.0 + 600.0)
    assert backoff_expired(1000.0, 4.0, 1000.0 + 605.0)
    assert [exit_delay(n) for n in (1, 2, 6, 20)] == [0.2, 0.4, 5.0, 5.0]
