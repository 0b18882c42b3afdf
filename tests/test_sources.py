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
