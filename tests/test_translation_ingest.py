"""Ingest of sentence pairs (--task translation): parallel files, pair checks, dedupe, two vocabularies."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines import ingest, sources, transforms
from pipelines.common import UserError
from pipelines.tasks.translation import PairCheck
from schemas import names, reasons, tfrecord
from textprep.preprocessing import TextSpec

MULTI30K = Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k"


def _lines(path: Path, n: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [next(handle).rstrip("\n") for _ in range(n)]


def _write(path: Path, lines: list[str], compress: bool = False, encoding: str = "utf-8") -> None:
    data = ("\n".join(lines) + "\n").encode(encoding)
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)


# ---------------------------------------------------------------------- pair checks, on hand-written strings
CHECK = PairCheck(max_chars=100, max_length_ratio=3.0, encoding="utf-8", fallback_encoding="cp1252")


@pytest.mark.parametrize(
    ("source", "target", "reason"),
    [
        (b"", b"A dog.", reasons.EMPTY_SOURCE),
        (b"Ein Hund.", b"   ", reasons.EMPTY_TARGET),
        (b"Ein Hund.", b"A dog." * 30, reasons.SIDE_TOO_LONG),
        (b"Ja.", b"Yes, and then the whole long story follows here.", reasons.LENGTH_RATIO_OUTLIER),
        (b"Hallo Welt.", b"Hallo Welt. ", reasons.SOURCE_EQUALS_TARGET),
        (b"Ein Hund.", None, reasons.MISSING_TEXT),
    ],
)
def test_pair_check_rejects_with_the_side_named(source, target, reason):
    checked, failure = CHECK({"id": "a", "source": "f", "text": source, "target": target})
    assert checked is None
    assert failure[0] == reason


def test_pair_check_decodes_both_sides_with_the_fallback():
    checked, failure = CHECK({"id": "a", "source": "f", "text": "Café.".encode("cp1252"), "target": b"Cafe."})
    assert failure is None
    assert checked["text"] == "Café." and checked["target"] == "Cafe."


def test_pair_check_undecodable_target_names_the_side():
    strict = PairCheck(100, 3.0, "utf-8", None)
    _, failure = strict({"id": "a", "source": "f", "text": b"Ein Hund.", "target": b"A d\xf6g."})
    assert failure[0] == reasons.UNDECODABLE_TEXT and failure[1].startswith("target:")


def test_clean_text_cleans_the_named_field_only():
    spec = TextSpec(lowercase=True, strip_html=True, whitespace="collapse", tokenizer="word")
    records = [{"id": "1", "source": "s", "text": "<b>Ein</b>  Hund", "target": "<i>A</i>   DOG"}]
    with TestPipeline() as pipeline:
        cleaned = pipeline | beam.Create(records) | transforms.CleanText(spec, field="target")
        assert_that(
            cleaned.records | beam.Map(lambda r: (r["text"], r["target"])), equal_to([("<b>Ein</b>  Hund", "a dog")])
        )


def test_parallel_file_names_and_splits():
    side = sources.ParallelFile.parse("/d/test_2016_flickr.de.gz", "de")
    assert side.stem == "test_2016_flickr" and side.split == names.SPLIT_TEST
    assert side.sibling("en") == "/d/test_2016_flickr.en.gz"
    assert sources.ParallelFile.parse("/d/val.de", "de").split == names.SPLIT_VALIDATION
    assert sources.ParallelFile.parse("/d/train.en.gz", "de") is None
    assert sources.ParallelFile.parse("/d/corpus.de", "de").split is None


def test_line_count_mismatch_is_one_line_naming_both_counts(tmp_path):
    _write(tmp_path / "train.de", ["a", "b", "c"])
    _write(tmp_path / "train.en", ["x", "y"])
    with pytest.raises(UserError, match=r"train\.de has 3 lines but .*train\.en has 2"):
        sources.check_parallel_files(str(tmp_path), "de", "en", "utf-8")
    (tmp_path / "train.en").unlink()
    with pytest.raises(UserError, match="has no target file"):
        sources.check_parallel_files(str(tmp_path), "de", "en", "utf-8")


def test_parallel_needs_the_translation_task(tmp_path):
    _write(tmp_path / "train.de", ["a"])
    _write(tmp_path / "train.en", ["x"])
    with pytest.raises(UserError, match="needs --task translation"):
        ingest.run(["--input", str(tmp_path), "--input_format", "parallel", "--output_dir", str(tmp_path / "o")])


# ---------------------------------------------------------------------- end to end on Multi30k lines
def _records(directory: Path, split: str) -> list[dict]:
    files = sorted(str(p) for p in (directory / split).glob("*.tfrecord.gz"))
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    spec = tfrecord.translation_feature_spec()
    out = []
    for raw in dataset:
        parsed = tf.io.parse_single_example(raw, spec)
        values = {k: v.numpy() for k, v in parsed.items()}
        out.append({k: v.tolist() if hasattr(v, "tolist") else v for k, v in values.items()})
    return out


def test_ingest_parallel_files_end_to_end(tmp_path):
    de, en = _lines(MULTI30K / "train.de.gz", 60), _lines(MULTI30K / "train.en.gz", 60)
    test_de, test_en = _lines(MULTI30K / "test_2016_flickr.de.gz", 10), _lines(MULTI30K / "test_2016_flickr.en.gz", 10)
    # Hostile pairs: an exact duplicate, a copy of a test source (leakage), an empty target, an
    # untranslated copy, a length-ratio outlier, and a cp1252 line (decoded by the fallback).
    de += [de[0], test_de[0], "Ein Hund.", "Hallo Welt.", "Ja.", "Ein Café am Meer."]
    en += [
        en[0],
        "A different translation.",
        "",
        "Hallo Welt.",
        "Yes, and then a very long story follows here.",
        "A café by the sea.",
    ]
    raw = tmp_path / "raw"
    raw.mkdir()
    train_de = ("\n".join(de[:-1]) + "\n").encode("utf-8") + de[-1].encode("cp1252") + b"\r\n"
    (raw / "train.de.gz").write_bytes(gzip.compress(train_de, mtime=0))
    _write(raw / "train.en.gz", en, compress=True)
    _write(raw / "val.de", de[1:11])
    _write(raw / "val.en", en[1:11])
    _write(raw / "test_2016_flickr.de", test_de)
    _write(raw / "test_2016_flickr.en", test_en)
    _write(raw / "train.fr", ["ignored"])  # a third language beside the pair is not read
    out = tmp_path / "dataset"
    manifest = ingest.run(
        [
            "--task", "translation", "--input_format", "parallel", "--input", str(raw),
            "--source_language", "de", "--target_language", "en", "--fallback_encoding", "cp1252",
            "--tokenizer", "word", "--min_count", "1", "--max_quarantine_rate", "0.5", "--output_dir", str(out),
        ]
    )  # fmt: skip
    counts = manifest["counts"]
    assert counts["balanced"] and counts["records_in"] == 66 + 10 + 10
    by_reason = manifest["quarantine"]["by_reason"]
    assert by_reason[reasons.EMPTY_TARGET] == 1
    assert by_reason[reasons.SOURCE_EQUALS_TARGET] == 1
    assert by_reason[reasons.LENGTH_RATIO_OUTLIER] == 1
    assert by_reason[reasons.DUPLICATE_OF_TEST] == 1
    # One pair twice in train, and the validation pairs repeat train ones: the validation copy is kept.
    assert by_reason[reasons.DUPLICATE_PAIR] == 1 + 10
    assert manifest["repaired"] == {reasons.REPAIRED_FALLBACK_ENCODING: 1}
    assert manifest["source_language"] == "de" and manifest["vocabularies"]["joint"] is False
    assert {p.name for p in out.iterdir()} >= {names.SOURCE_VOCAB_FILE, names.TARGET_VOCAB_FILE}
    inputs = (out / names.INPUTS_FILE).read_text().splitlines()
    assert len(inputs) == 6 and not any("train.fr" in line for line in inputs)

    test = {r["id"].decode(): r for r in _records(out, "test")}
    assert len(test) == 10
    first = test["test_2016_flickr:1"]
    assert first["source_text"].decode() == test_de[0] and first["target_text"].decode() == test_en[0]
    assert first["source_length"] == len(first["source_ids"]) > 0
    assert names.BOS_ID not in first["target_ids"] and names.EOS_ID not in first["target_ids"]
    train = {r["id"].decode(): r for r in _records(out, "train")}
    assert train["train:66"]["source_text"].decode() == "Ein Café am Meer."
    source_vocab = (out / names.SOURCE_VOCAB_FILE).read_text(encoding="utf-8")
    assert "Café" in source_vocab and "sea" not in source_vocab  # one vocabulary per side
    assert (out / "validation.html").exists()


def test_ingest_pairs_from_jsonl_with_a_joint_vocabulary(tmp_path):
    rows = [{"id": f"r{i}", "de": f"Ein Hund Nummer {i}.", "en": f"A dog number {i}."} for i in range(30)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "dataset"
    manifest = ingest.run(
        [
            "--task", "translation", "--input_format", "jsonl", "--input", str(path),
            "--source_column", "de", "--target_column", "en", "--joint_vocabulary",
            "--tokenizer", "word", "--min_count", "1", "--validation_fraction", "0.2", "--test_fraction", "0.2",
            "--output_dir", str(out),
        ]
    )  # fmt: skip
    assert manifest["counts"]["balanced"] and manifest["counts"]["quarantined"] == 0
    assert manifest["vocabularies"]["joint"] is True
    assert (out / names.SOURCE_VOCAB_FILE).read_bytes() == (out / names.TARGET_VOCAB_FILE).read_bytes()
    vocab = (out / names.SOURCE_VOCAB_FILE).read_text(encoding="utf-8")
    assert "Hund" in vocab and "dog" in vocab
    assert sum(manifest["splits"][s]["records"] for s in ("train", "validation", "test")) == 30
