"""Reading conmon's k8s-file log: partial entries join, and after the writer started the file
over, a line whose beginning was in the discarded file is not shown as a line of its own."""

import io

from reconciler.engine.containers.logs import LogParser


def entries(*items: tuple[str, str, str]) -> io.BytesIO:
    return io.BytesIO(b"".join(f"2026-12-02T10:00:00.000000000Z {s} {t} {text}\n".encode()
                               for s, t, text in items))


def read(parser: LogParser, f) -> list[tuple[str, bytes]]:
    out = []
    parser.read(f, lambda line: out.append((line.stream, line.data)))
    return out


def test_partial_entries_make_one_line():
    p = LogParser()
    p.started_over(rotated=False)
    f = entries(("stdout", "P", "hel"), ("stderr", "F", "oops"), ("stdout", "F", "lo"))
    assert read(p, f) == [("stderr", b"oops\n"), ("stdout", b"hello\n")]


def test_after_a_rotation_the_first_line_of_each_stream_is_dropped():
    p = LogParser()
    p.started_over(rotated=True)
    f = entries(("stdout", "F", "000000000000194"), ("stderr", "P", "rest "), ("stderr", "F", "of it"),
                ("stdout", "F", "195"), ("stderr", "F", "next"))
    assert read(p, f) == [("stdout", b"195\n"), ("stderr", b"next\n")]


def test_following_across_a_rotation_joins_the_line_it_cut():
    p = LogParser()
    p.started_over(rotated=False)
    assert read(p, entries(("stdout", "F", "1"), ("stdout", "P", "begin-"))) == [("stdout", b"1\n")]
    p.started_over(rotated=True)              # the writer started a new file mid-line
    assert read(p, entries(("stdout", "F", "end"), ("stdout", "F", "2"))) == [
        ("stdout", b"begin-end\n"), ("stdout", b"2\n")]


def test_an_incomplete_last_entry_waits_for_its_newline():
    p = LogParser()
    p.started_over(rotated=False)
    f = io.BytesIO(b"2026-12-02T10:00:00Z stdout F done\n2026-12-02T10:00:01Z stdout F hal")
    assert read(p, f) == [("stdout", b"done\n")]
