"""Readers for every input format, on files the tests write."""

import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines import sources
from pipelines.common import INPUTS_TAG, QUARANTINE_TAG, UserError
from schemas import reasons


def summarize(record):
    text = record["text"]
    return record["id"], record["split"], record["label"], text.decode() if isinstance(text, bytes) else text


def test_aclimdb_layout(tmp_path):
    for rel, text in {
        "train/pos/1_9.txt": "Loved it",
        "train/neg/2_1.txt": "Hated it",
        "train/unsup/3_0.txt": "Watched it",
        "test/pos/4_8.txt": "Fine",
        "test/pos/notes.txt": "a stray file",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    with TestPipeline() as p:
        out = p | sources.ReadRawRecords(str(tmp_path), "aclimdb")
        assert_that(
            out["records"] | beam.Map(summarize),
            equal_to(
                [
                    ("train/pos/1", "train", "pos", "Loved it"),
                    ("train/neg/2", "train", "neg", "Hated it"),
                    ("train/unsup/3", "unsup", None, "Watched it"),
                    ("test/pos/4", "test", "pos", "Fine"),
                ]
            ),
            label="records",
        )
        assert_that(
            out[QUARANTINE_TAG] | beam.Map(lambda q: q["reason"]), equal_to([reasons.UNPARSEABLE_FILENAME]), label="q"
        )
        assert_that(out[INPUTS_TAG] | beam.combiners.Count.Globally(), equal_to([5]), label="inputs")


def test_csv_with_columns_and_a_broken_row(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('id,text,label,stars\nr1,"Great, really",pos,5\nr2,Bad,neg,1\nr3,too,many,columns,here\n')
    with TestPipeline() as p:
        out = p | sources.ReadRawRecords(str(path), "csv")
        assert_that(
            out["records"] | beam.Map(lambda r: (*summarize(r), r["extra"]["stars"])),
            equal_to([("r1", None, "pos", "Great, really", "5"), ("r2", None, "neg", "Bad", "1")]),
            label="records",
        )
        assert_that(
            out[QUARANTINE_TAG] | beam.Map(lambda q: (q["id"], q["reason"])),
            equal_to([("reviews.csv:4", reasons.MALFORMED_ROW)]),
            label="q",
        )


def test_jsonl_rows_and_bad_lines(tmp_path):
    path = tmp_path / "reviews.jsonl"
    lines = [
        json.dumps({"text": "Good", "label": 1, "split": "test"}),
        "not json",
        "[1, 2]",
        "",
        json.dumps({"text": "Meh", "label": "neg"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    with TestPipeline() as p:
        out = p | sources.ReadRawRecords(str(path), "jsonl")
        assert_that(
            out["records"] | beam.Map(summarize),
            equal_to([("reviews.jsonl:1", "test", "1", "Good"), ("reviews.jsonl:5", None, "neg", "Meh")]),
            label="records",
        )
        assert_that(
            out[QUARANTINE_TAG] | beam.Map(lambda q: q["reason"]),
            equal_to([reasons.MALFORMED_ROW, reasons.MALFORMED_ROW, reasons.EMPTY_TEXT]),
            label="q",
        )


def test_parquet_and_lines(tmp_path):
    pq.write_table(pa.table({"review": ["One", "Two"], "label": ["pos", "neg"]}), tmp_path / "part.parquet")
    (tmp_path / "docs.txt").write_bytes(b"first doc\nsecond doc\n")
    with TestPipeline() as p:
        parquet = p | "Parquet" >> sources.ReadRawRecords(
            str(tmp_path / "part.parquet"), "parquet", sources.ColumnNames(text="review")
        )
        lines = p | "Lines" >> sources.ReadRawRecords(str(tmp_path / "docs.txt"), "lines")
        assert_that(
            parquet["records"] | "P" >> beam.Map(summarize),
            equal_to([("part.parquet:1", None, "pos", "One"), ("part.parquet:2", None, "neg", "Two")]),
            label="parquet",
        )
        assert_that(
            lines["records"] | "L" >> beam.Map(summarize),
            equal_to([("docs.txt:1", None, None, "first doc"), ("docs.txt:2", None, None, "second doc")]),
            label="lines",
        )


def test_missing_input_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="matches no file"):
        sources.resolve_input_pattern(str(tmp_path / "nope*.csv"), "csv")
    with pytest.raises(UserError, match="no aclImdb layout"):
        sources.resolve_input_pattern(str(tmp_path), "aclimdb")


def test_text_format_one_record_per_file_with_relative_ids(tmp_path):
    corpus = "First Citizen:\r\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "shakespeare.txt").write_bytes(corpus.encode())
    (tmp_path / "books" / "empty.txt").write_bytes(b"")
    (tmp_path / "books" / "nested").mkdir()
    (tmp_path / "books" / "nested" / "poem.txt").write_bytes(b"\xef\xbb\xbfA BOM at the start is dropped.")
    with TestPipeline() as p:
        folder = p | "Folder" >> sources.ReadRawRecords(str(tmp_path / "books") + "/", "text")
        one_file = p | "File" >> sources.ReadRawRecords(str(tmp_path / "books" / "shakespeare.txt"), "text")
        glob = p | "Glob" >> sources.ReadRawRecords(str(tmp_path / "books" / "*" / "*.txt"), "text")
        whole = (corpus.encode(), None, None, {})
        assert_that(
            folder["records"] | "F" >> beam.Map(lambda r: (r["id"], r["text"], r["split"], r["label"], r["extra"])),
            equal_to([("shakespeare.txt", *whole), ("empty.txt", b"", None, None, {})]),
            label="folder",
        )
        # A folder holds files only (like `lines`): the sub-folder is listed as quarantined, not skipped.
        assert_that(
            folder[QUARANTINE_TAG] | "FQ" >> beam.Map(lambda q: (q["source"].rsplit("/", 1)[-1], q["reason"])),
            equal_to([("nested", reasons.UNREADABLE_INPUT)]),
            label="folder_quarantine",
        )
        assert_that(
            one_file["records"] | "O" >> beam.Map(lambda r: (r["id"], r["text"])),
            equal_to([("shakespeare.txt", corpus.encode())]),
            label="file",
        )
        # A glob's ids are relative to the folders before its first wildcard.
        assert_that(
            glob["records"] | "G" >> beam.Map(lambda r: (r["id"], r["text"])),
            equal_to([("nested/poem.txt", b"A BOM at the start is dropped.")]),
            label="glob",
        )
        assert_that(folder[INPUTS_TAG] | "FI" >> beam.Map(lambda i: i[2]), equal_to([len(corpus), 0]), label="inputs")


def test_truncated_multibyte_character_passes_through_as_bytes(tmp_path):
    from pipelines.transforms import check_raw_record

    # "café" and "’" cut off inside their UTF-8 sequences (\xc3\xa9, \xe2\x80\x99).
    (tmp_path / "cut.txt").write_bytes(b"whole line\ncaf\xc3")
    (tmp_path / "cut_doc.txt").write_bytes(b"it\xe2\x80")
    with TestPipeline() as p:
        lines = p | "Lines" >> sources.ReadRawRecords(str(tmp_path / "cut.txt"), "lines")
        text = p | "Text" >> sources.ReadRawRecords(str(tmp_path / "cut_doc.txt"), "text")
        records = (lines["records"], text["records"]) | beam.Flatten()
        # The cut rows reach the checker as stored, which quarantines them (undecodable_text).
        assert_that(
            records | beam.Map(lambda r: (r["id"], r["text"], check_raw_record(r, 1000, False)[1] is None)),
            equal_to(
                [
                    ("cut.txt:1", b"whole line", True),
                    ("cut.txt:2", b"caf\xc3", False),
                    ("cut_doc.txt", b"it\xe2\x80", False),
                ]
            ),
        )


def test_lines_end_at_lf_crlf_and_a_lone_cr(tmp_path):
    (tmp_path / "ends.txt").write_bytes(b"unix\nwindows\r\nold mac\rnext\r\rafter empty\n\nlast without end")
    with TestPipeline() as p:
        out = p | sources.ReadRawRecords(str(tmp_path / "ends.txt"), "lines")
        assert_that(
            out["records"] | beam.Map(lambda r: r["text"]),
            equal_to([b"unix", b"windows", b"old mac", b"next", b"", b"after empty", b"", b"last without end"]),
        )


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 1 << 20])
def test_line_split_across_chunk_boundaries(monkeypatch, chunk_bytes):
    import io

    monkeypatch.setattr(sources, "_CHUNK_BYTES", chunk_bytes)
    data = b"a\r\nbb\rccc\n\r\n\rd\r"
    assert list(sources._split_byte_lines(io.BytesIO(data))) == [b"a", b"bb", b"ccc", b"", b"", b"d"]
    assert list(sources._split_byte_lines(io.BytesIO(b""))) == []


def test_text_format_input_paths(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "b.md").write_text("two")
    assert sources.resolve_input_pattern(str(tmp_path / "a.txt"), "text") == str(tmp_path / "a.txt")
    assert sources.resolve_input_pattern(str(tmp_path), "text") == f"{tmp_path}/*"
    assert sources.resolve_input_pattern(str(tmp_path / "*.txt"), "text") == str(tmp_path / "*.txt")
    with pytest.raises(UserError, match="matches no file"):
        sources.resolve_input_pattern(str(tmp_path / "*.rst"), "text")


def test_listing_travels_in_chunks_and_quarantines_one_by_one(tmp_path):
    for name in ("a", "b", "c", "d", "e"):
        (tmp_path / f"{name}.txt").write_text(name)
    (tmp_path / "sub.txt").mkdir()  # a directory matching the pattern
    chunks = list(sources.list_input_chunks(str(tmp_path / "*.txt"), files_per_chunk=2))
    files = [list(sources.files_of_chunk(chunk)) for chunk in chunks if isinstance(chunk, bytes)]
    assert [[m.path.rsplit("/", 1)[-1] for m in chunk] for chunk in files] == [
        ["a.txt", "b.txt"],
        ["c.txt", "d.txt"],
        ["e.txt"],
    ]
    (directory,) = [entry for entry in chunks if isinstance(entry, dict)]
    assert directory["reason"] == reasons.UNREADABLE_INPUT and "directory" in directory["detail"]
    assert [m.size_in_bytes for chunk in files for m in chunk] == [1] * 5


def test_a_chunk_keeps_file_names_with_undecodable_bytes_and_line_breaks(tmp_path):
    names_on_disk = ["line\nbreak.txt", "tab\there.txt", "caf\udce9.txt"]  # \udce9: byte 0xE9 kept by surrogateescape
    for name in names_on_disk:
        (tmp_path / name).write_text("x")
    (chunk,) = sources.list_input_chunks(str(tmp_path / "*.txt"))
    assert sorted(m.path for m in sources.files_of_chunk(chunk)) == sorted(str(tmp_path / n) for n in names_on_disk)


def test_hashing_reader_reads_a_whole_file_at_once(tmp_path):
    import hashlib
    import io

    data = bytes(range(256)) * 1000
    reader = sources._HashingReader(io.BytesIO(data))
    assert reader.read() == data
    assert (reader.digest.hexdigest(), reader.size) == (hashlib.sha256(data).hexdigest(), len(data))
