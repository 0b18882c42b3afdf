"""Readers on files that are not (only) UTF-8: the right text with the right --encoding, and
with the wrong one the bad rows reach the checker as bytes; never a lone surrogate (Beam's
coders cannot encode one), never a crash, never a whole file lost for one row."""

import os

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from pipelines import sources
from pipelines.common import INPUTS_TAG, QUARANTINE_TAG, UserError
from pipelines.transforms import check_raw_record
from schemas import reasons

# Café / ’quoted’ / … : 0xE9, 0x92, 0x85 in cp1252, none of them valid UTF-8 on its own.
CP1252_ROWS = [
    ("r1", "Caf\u00e9 was \u2019fine\u2019\u2026", "pos", "Z\u00fcrich"),
    ("r2", "plain ascii words", "neg", "Bern"),
    ("r3", "Na\u00efve plot \u2014 dull", "neg", "Gen\u00e8ve"),
]


def lone_surrogates(value, where="element"):
    """Where in `value` (nested dicts, lists, tuples; keys too) a str holds a lone surrogate."""
    found = []
    if isinstance(value, str):
        found += [f"{where}: {value!r}"] if any("\ud800" <= ch <= "\udfff" for ch in value) else []
    elif isinstance(value, dict):
        for key, item in value.items():
            found += lone_surrogates(key, f"{where} key") + lone_surrogates(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found += lone_surrogates(item, f"{where}[{i}]")
    return found


def _raise_on_surrogates(element):
    # Runs fused right after the reader, before any coder could fail on the element first.
    if found := lone_surrogates(element):
        raise AssertionError(f"lone surrogate in {found}")
    return element


def no_lone_surrogates(actual):
    if found := [hit for element in actual for hit in lone_surrogates(element)]:
        raise BeamAssertException(f"lone surrogates: {found}")


def read(p, path, input_format, encoding="utf-8", label=""):
    """ReadRawRecords with a no-lone-surrogate check on every element of all three outputs."""
    out = p | f"Read{label}" >> sources.ReadRawRecords(str(path), input_format, encoding=encoding)
    # One assert for the three outputs: each assert_that is a GroupByKey, the slow part of these tests.
    tagged = [
        out[tag] | f"Tag{label}{tag}" >> beam.Map(lambda e, t=tag: (t, e)) for tag in (QUARANTINE_TAG, INPUTS_TAG)
    ]
    everything = (out["records"], *tagged) | f"All{label}" >> beam.Flatten()
    checked = everything | f"Clean{label}" >> beam.Map(_raise_on_surrogates)
    assert_that(checked, no_lone_surrogates, label=f"NoSurrogates{label}")
    return out


def cp1252_csv(path, extra_row: bytes = b""):
    lines = [b"id,text,label,city"]
    lines += [f'{i},"{t}",{lab},{c}'.encode("cp1252") for i, t, lab, c in CP1252_ROWS]
    path.write_bytes(b"\r\n".join(lines) + b"\r\n" + extra_row)
    return path


def fields(record):
    return record["id"], record["text"], record["label"], record["extra"].get("city")


def checked_text(record, encoding="utf-8", fallback=None):
    checked, failure = check_raw_record(record, 10_000, True, encoding=encoding, fallback_encoding=fallback)
    return (record["id"], checked["text"]) if checked else (record["id"], failure[0])


def test_lone_surrogate_helper_finds_them_anywhere():
    assert lone_surrogates({"id": "ok", "extra": {"k\udce9": ["x", ("\ud83d",)]}}) == [
        "element['extra'] key: 'k\\udce9'",
        "element['extra']['k\\udce9'][1][0]: '\\ud83d'",
    ]
    assert lone_surrogates({"text": b"\xe9", "emoji": "\U0001f600"}) == []


def test_cp1252_csv_with_encoding_cp1252_gives_the_right_text(tmp_path):
    path = cp1252_csv(tmp_path / "win.csv")
    with TestPipeline() as p:
        out = read(p, path, "csv", encoding="cp1252")
        assert_that(out["records"] | beam.Map(fields), equal_to(CP1252_ROWS), label="records")
        assert_that(out[QUARANTINE_TAG], equal_to([]), label="no_quarantine")


def test_cp1252_csv_read_as_utf8_passes_bad_rows_on_as_their_bytes(tmp_path):
    path = cp1252_csv(tmp_path / "win.csv")
    expected = [
        (i, t if t.isascii() else t.encode("cp1252"), lab, c.encode("cp1252").decode("utf-8", "replace"))
        for i, t, lab, c in CP1252_ROWS
    ]
    with TestPipeline() as p:
        out = read(p, path, "csv")  # the default, utf-8: as ingest runs before --encoding is wired to the reader
        records = out["records"]
        assert_that(records | beam.Map(fields), equal_to(expected), label="records")
        # The checker then falls back per row, or quarantines the row: never the file.
        assert_that(
            records | "Fallback" >> beam.Map(checked_text, fallback="cp1252"),
            equal_to([(i, t) for i, t, _, _ in CP1252_ROWS]),
            label="fallback",
        )
        assert_that(
            records | "NoFallback" >> beam.Map(checked_text),
            equal_to([("r1", reasons.UNDECODABLE_TEXT), ("r2", "plain ascii words"), ("r3", reasons.UNDECODABLE_TEXT)]),
            label="no_fallback",
        )
        # The checker's own --encoding cp1252 decodes the bytes the utf-8 reader passed on.
        assert_that(
            records | "CheckerCp1252" >> beam.Map(checked_text, encoding="cp1252"),
            equal_to([(i, t) for i, t, _, _ in CP1252_ROWS]),
            label="checker_cp1252",
        )


def test_cp1252_undefined_byte_quarantines_that_row_only(tmp_path):
    # 0x81 is undefined in cp1252: the row's text goes on as its exact bytes, the other rows as text.
    path = cp1252_csv(tmp_path / "win.csv", extra_row=b'r4,"Caf\xe9 \x81 odd",pos,Basel\r\n')
    with TestPipeline() as p:
        out = read(p, path, "csv", encoding="cp1252")
        records = out["records"]
        assert_that(
            records | beam.Map(lambda r: (r["id"], r["text"])),
            equal_to([(i, t) for i, t, _, _ in CP1252_ROWS] + [("r4", b"Caf\xe9 \x81 odd")]),
            label="records",
        )
        assert_that(
            records | "Check" >> beam.Map(checked_text, encoding="cp1252"),
            equal_to([(i, t) for i, t, _, _ in CP1252_ROWS] + [("r4", reasons.UNDECODABLE_TEXT)]),
            label="checked",
        )
        assert_that(
            records | "Latin1Fallback" >> beam.Map(checked_text, encoding="cp1252", fallback="latin-1"),
            equal_to([(i, t) for i, t, _, _ in CP1252_ROWS] + [("r4", "Caf\u00e9 \x81 odd")]),
            label="fallback",
        )


def test_latin1_jsonl(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(
        b'{"id": "l1", "text": "Caf\xe9 cr\xe8me", "label": "pos", "r\xe9gion": "\xcele"}\n'
        b'{"id": "l2", "text": "plain", "label": "neg"}\n'
    )
    with TestPipeline() as p:
        latin1 = read(p, path, "jsonl", encoding="latin-1", label="Latin1")
        utf8 = read(p, path, "jsonl", label="Utf8")
        assert_that(
            latin1["records"] | "L" >> beam.Map(lambda r: (r["id"], r["text"], r["extra"])),
            equal_to(
                [
                    ("l1", "Caf\u00e9 cr\u00e8me", {"r\u00e9gion": "\u00cele", "label": "pos"}),
                    ("l2", "plain", {"label": "neg"}),
                ]
            ),
            label="latin1",
        )
        assert_that(
            utf8["records"] | "U" >> beam.Map(lambda r: (r["id"], r["text"], r["extra"])),
            equal_to(
                [
                    ("l1", b"Caf\xe9 cr\xe8me", {"r\ufffdgion": "\ufffdle", "label": "pos"}),
                    ("l2", "plain", {"label": "neg"}),
                ]
            ),
            label="utf8",
        )


def test_jsonl_invalid_utf8_inside_a_string_value(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"id": "bad\xff", "text": "ok \xff\xfe then \xe2\x80", "label": "neg"}\n'  # stray bytes, cut-off \xe2\x80\x99
        b'{"id": "esc", "text": "half an emoji \\ud83d here", "label": "pos"}\n'  # valid JSON, invalid Unicode
        b'{"id": "both", "text": "\xe9 and \\udce9 and \\ud83d", "label": "pos"}\n'
        b'{"id": "fine", "text": "caf\xc3\xa9 \\u00e9 \\ud83d\\ude00", "label": "pos"}\n'
    )
    with TestPipeline() as p:
        out = read(p, path, "jsonl")
        assert_that(
            out["records"] | beam.Map(lambda r: (r["id"], r["text"])),
            equal_to(
                [
                    ("bad\ufffd", b"ok \xff\xfe then \xe2\x80"),
                    ("esc", "half an emoji \ufffd here"),
                    # An escaped U+DCE9 reads like the byte 0xE9 next to real bad bytes; other escapes become U+FFFD.
                    ("both", b"\xe9 and \xe9 and \xef\xbf\xbd"),
                    ("fine", "caf\u00e9 \u00e9 \U0001f600"),
                ]
            ),
            label="records",
        )


def test_jsonl_undecodable_bytes_beside_unencodable_escapes_quarantine_the_row(tmp_path):
    path = tmp_path / "mixed.jsonl"
    # cp1252 has no U+4E2D, and 0x81 is undefined in it: no byte string stands for this text.
    path.write_bytes(
        b'{"id": "x", "text": "\x81 \\u4e2d", "label": "pos"}\n{"id": "y", "text": "fine", "label": "pos"}\n'
    )
    with TestPipeline() as p:
        out = read(p, path, "jsonl", encoding="cp1252")
        assert_that(out["records"] | beam.Map(lambda r: r["id"]), equal_to(["y"]), label="records")
        assert_that(
            out[QUARANTINE_TAG] | beam.Map(lambda q: (q["id"], q["reason"])),
            equal_to([("x", reasons.UNDECODABLE_TEXT)]),
            label="quarantine",
        )


@pytest.mark.parametrize(
    ("name", "data", "input_format", "encoding", "expected"),
    [
        pytest.param(
            "bom.csv",
            b'\xef\xbb\xbfid,text,label\r\nr1,Fine,pos\r\nr2,"two\r\nlines",neg\r\n',
            "csv",
            "utf-8",
            [("r1", "Fine", ["label"]), ("r2", "two\r\nlines", ["label"])],  # first column "id", not "\ufeffid"
            id="csv",
        ),
        pytest.param(
            "bom.jsonl",
            b'\xef\xbb\xbf{"id": "j1", "text": "a"}\r\n{"text": "b"}\r{"text": "c"}\n',
            "jsonl",
            "utf-8",
            [("j1", "a", []), ("bom.jsonl:2", "b", []), ("bom.jsonl:3", "c", [])],
            id="jsonl",
        ),
        pytest.param(
            "bom.txt",
            b"\xef\xbb\xbffirst\r\nsecond\rthird\n",
            "lines",
            "utf-8",
            [("bom.txt:1", b"first", []), ("bom.txt:2", b"second", []), ("bom.txt:3", b"third", [])],
            id="lines",
        ),
        pytest.param(
            "utf16.csv",
            "id,text,label\r\nu1,\u00e9t\u00e9,pos\r\n".encode("utf-16"),  # the codec reads its own BOM
            "csv",
            "utf-16",
            [("u1", "\u00e9t\u00e9", ["label"])],
            id="utf16-csv",
        ),
    ],
)
def test_bom_and_crlf(tmp_path, name, data, input_format, encoding, expected):
    (tmp_path / name).write_bytes(data)
    with TestPipeline() as p:
        out = read(p, tmp_path / name, input_format, encoding=encoding)
        assert_that(
            out["records"] | beam.Map(lambda r: (r["id"], r["text"], sorted(r["extra"]))),
            equal_to(expected),
            label="records",
        )


def test_lines_keep_their_bytes_in_any_encoding(tmp_path):
    path = tmp_path / "win.txt"
    path.write_bytes("Caf\u00e9 \u2019ok\u2019\r\nplain\r\n".encode("cp1252"))
    with TestPipeline() as p:
        out = read(p, path, "lines", encoding="cp1252")
        assert_that(
            out["records"] | beam.Map(lambda r: checked_text(r, encoding="cp1252")),
            equal_to([("win.txt:1", "Caf\u00e9 \u2019ok\u2019"), ("win.txt:2", "plain")]),
            label="records",
        )


def test_file_name_with_undecodable_bytes(tmp_path):
    # Linux hands such a name to Python with surrogate escapes; ids and sources get U+FFFD.
    os.makedirs(tmp_path / "in")
    with open(os.path.join(os.fsencode(tmp_path / "in"), b"caf\xe9.txt"), "wb") as handle:
        handle.write(b"one document")
    with TestPipeline() as p:
        out = read(p, tmp_path / "in", "text")
        assert_that(
            out["records"] | beam.Map(lambda r: (r["id"], r["text"])), equal_to([("caf\ufffd.txt", b"one document")])
        )


def test_unknown_encoding_is_a_user_error(tmp_path):
    (tmp_path / "a.csv").write_text("text\nx\n")
    with pytest.raises(UserError, match="not a known codec"):
        sources.ReadRawRecords(str(tmp_path / "a.csv"), "csv", encoding="no-such-codec")
