"""user:password in base64, as Docker's config.json and HTTP Basic auth carry it."""

import pytest

from reconciler.core import basicauth


def test_encode_decode_round_trip_keeps_colons_in_the_password():
    assert basicauth.decode(basicauth.encode("alice", "p:a:ss")) == ("alice", "p:a:ss")
    assert basicauth.encode("aladdin", "opensesame") == "YWxhZGRpbjpvcGVuc2VzYW1l"
    assert basicauth.header("aladdin", "opensesame") == "Basic YWxhZGRpbjpvcGVuc2VzYW1l"


@pytest.mark.parametrize("text, says", [("!!!", "not base64"), ("bm9jb2xvbg==", "no ':'"),
                                        ("//79", "not base64")])
def test_decode_says_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=says):
        basicauth.decode(text)
