"""core.timestamps: the RFC 3339 spellings docker-mini writes."""

from reconciler.core.timestamps import rfc3339

NS = 1795870382248165123       # 2026-11-28T12:53:02.248165123 UTC


def test_nanoseconds_in_records():
    assert rfc3339(NS) == "2026-11-28T12:53:02.248165123Z"


def test_microseconds_in_image_metadata_truncated_not_rounded():
    assert rfc3339(NS + 876, digits=6) == "2026-11-28T12:53:02.248165Z"      # .248165999


def test_conmon_log_zone():
    assert rfc3339(NS, utc="+00:00") == "2026-11-28T12:53:02.248165123+00:00"


def test_whole_seconds_keep_their_zeros():
    assert rfc3339(1_000_000_000 * 86400) == "1970-01-02T00:00:00.000000000Z"
