"""Messy real-world input: every case is repaired and flagged, or quarantined with a specific
reason; the run completes and `records in = out + quarantined` holds (and is in the manifest)."""

import json
import os
from pathlib import Path

import pytest

from pipelines import common, ingest
from schemas import reasons

GOOD = "A wonderful film with truly great acting and a fine score."


def quarantine_by_id(dataset_dir: Path) -> dict[str, dict]:
    records = {}
    for path in sorted((dataset_dir / "quarantine").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            records.setdefault(record["id"], record)
    return records


def kept_ids(dataset_dir: Path) -> set[str]:
    import tensorflow as tf

    from schemas.tfrecord import feature_spec

    files = [str(p) for p in dataset_dir.glob("*/*.tfrecord.gz")]
    return {
        tf.io.parse_single_example(s, feature_spec())["id"].numpy().decode()
        for s in tf.data.TFRecordDataset(files, compression_type="GZIP")
    }


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """An aclImdb-layout folder with one hostile case per file, ingested once."""
    root = tmp_path_factory.mktemp("hostile") / "aclImdb"
    for i in range(20):  # enough ordinary reviews for every split
        write(
            root / "train" / ("pos" if i % 2 else "neg") / f"{100 + i}_{9 if i % 2 else 2}.txt",
            f"{GOOD} Review number {i}.",
        )
        write(
            root / "test" / ("pos" if i % 2 else "neg") / f"{200 + i}_{9 if i % 2 else 2}.txt",
            f"{GOOD} Test review {i}.",
        )
    write(root / "train/pos/1_9.txt", "")  # empty file
    write(root / "train/pos/2_8.txt", "  \n\t  \n")  # whitespace only
    write(root / "train/neg/3_2.txt", b"Caf\xe9 food was better than this film")  # Latin-1
    write(root / "train/neg/4_1.txt", b"\x93Awful\x94 \x96 a waste of time")  # cp1252 smart quotes
    write(root / "train/neg/5_1.txt", bytes(range(256)) * 8 + b"\x00" * 64)  # binary junk
    write(root / "train/neg/6_2.txt", "Bad\x00 movie,\x00 really bad")  # NUL bytes
    write(root / "train/neg/7_1.txt", "word " * 2_200_000)  # one 11 MB document
    write(root / "train/pos/8_9.txt", "<br /><br /><p></p>&nbsp;<i></i>")  # markup only
    write(
        root / "train/pos/9_10.txt", "\u200fGreat\u200b film \U0001f600 \u202eloved\u2066 it \u200d"
    )  # unusual Unicode
    write(root / "train/pos/review.txt", GOOD + " misnamed")  # file name that does not parse
    (root / "train/pos/10_9.txt").mkdir()  # a directory where a file is expected
    os.symlink(root / "train/pos/101_9.txt", root / "train/pos/11_9.txt")  # symlink to a file: followed
    os.symlink(root / "nowhere.txt", root / "train/pos/12_9.txt")  # broken symlink
    write(root / "train/pos/13_9.txt", "This exact review is in train and in test.")
    write(root / "test/pos/14_9.txt", "This exact review is in train and in test.")
    out = tmp_path_factory.mktemp("hostile_out")
    manifest = ingest.run(
        [
            "--input",
            str(root),
            "--output_dir",
            str(out),
            "--fallback_encoding",
            "cp1252",
            "--max_quarantine_rate",
            "1.0",
            "--min_count",
            "1",
        ]
    )
    return out, manifest, quarantine_by_id(out), kept_ids(out)


@pytest.mark.parametrize(
    ("record_id", "reason"),
    [
        ("train/pos/1", reasons.EMPTY_TEXT),
        ("train/pos/2", reasons.EMPTY_TEXT),
        ("train/neg/5", reasons.BINARY_CONTENT),
        ("train/neg/7", reasons.TEXT_TOO_LONG),
        ("train/pos/8", reasons.EMPTY_AFTER_CLEANING),
        ("train/pos/review.txt", reasons.UNPARSEABLE_FILENAME),
        ("train/pos/11", reasons.DUPLICATE_TEXT),  # the symlinked file's text is already there
        ("train/pos/13", reasons.DUPLICATE_OF_TEST),
    ],
)
def test_folder_case_is_quarantined_with_reason(folder_run, record_id, reason):
    _, _, quarantined, _ = folder_run
    assert quarantined[record_id]["reason"] == reason, quarantined.get(record_id)


def test_directory_and_broken_symlink_are_quarantined_not_skipped(folder_run):
    _, _, quarantined, _ = folder_run
    by_source = {q["source"].rsplit("/", 1)[-1]: q for q in quarantined.values()}
    assert (
        by_source["10_9.txt"]["reason"] == reasons.UNREADABLE_INPUT and "directory" in by_source["10_9.txt"]["detail"]
    )
    assert (
        by_source["12_9.txt"]["reason"] == reasons.UNREADABLE_INPUT
        and "broken symlink" in by_source["12_9.txt"]["detail"]
    )


def test_repaired_cases_are_kept_and_counted(folder_run):
    _, manifest, _, kept = folder_run
    assert {"train/neg/3", "train/neg/4", "train/neg/6", "train/pos/9"} <= kept
    assert "test/pos/14" in kept  # the test copy of the leaked text stays
    assert manifest["repaired"] == {
        reasons.REPAIRED_FALLBACK_ENCODING: 2,
        reasons.REPAIRED_NUL_BYTES: 1,
        reasons.REPAIRED_CONTROL_CHARACTERS: 1,
    }


def test_counts_balance_and_are_in_the_manifest(folder_run):
    out, manifest, quarantined, kept = folder_run
    counts = manifest["counts"]
    assert counts["balanced"] and counts["records_in"] == counts["records_out"] + counts["quarantined"]
    assert counts["records_out"] == len(kept) and counts["quarantined"] == len(quarantined)
    assert json.loads((out / "manifest.json").read_text())["counts"] == counts


def test_validation_report_shows_failing_rows(folder_run):
    out, manifest, _, _ = folder_run
    report = json.loads((out / "validation.json").read_text())
    raw = next(s for s in report["suites"] if s["suite"] == "raw_rows")
    lengths = next(
        e
        for e in raw["expectations"]
        if e["type"] == "expect_column_values_to_be_between" and e["column"] == "text_chars"
    )
    assert not lengths["success"] and {"train/neg/7", "train/pos/1"} <= {e["id"] for e in lengths["examples"]}
    page = (out / "validation.html").read_text()
    assert "raw_rows" in page and "cleaned_dataset" in page and "train/neg/7" in page
    assert manifest["validation"]["warnings"]


def test_undecodable_without_fallback_is_quarantined():
    from pipelines.transforms import check_raw_record

    record = {"id": "x", "source": "s", "split": "train", "label": "neg", "text": b"Caf\xe9", "extra": {}}
    checked, failure = check_raw_record(record, 1000, True)
    assert checked is None and failure[0] == reasons.UNDECODABLE_TEXT
    checked, failure = check_raw_record(record, 1000, True, fallback_encoding="cp1252")
    assert checked["text"] == "Café" and checked["repairs"] == [reasons.REPAIRED_FALLBACK_ENCODING]


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory):
    """CSV and JSONL files with broken rows, ingested together."""
    folder = tmp_path_factory.mktemp("tabular")
    write(
        folder / "reviews.csv",
        "id,text,label\n"
        'c1,"Good movie, really",pos\n'
        "c2,too,many,columns,here\n"
        'c3,"No label here",\n'
        'c4,"Unknown label",maybe\n'
        'c5,"Loved it",positive\n'
        'c6,"Hated it",Negative\n'
        'c7,"Fine",1\n'
        'c1,"Same id as the first row",neg\n',
    )
    write(
        folder / "broken_quote.csv", 'id,text,label\nq1,"Fine row",pos\nq2,"Broken quote, bad,neg\nq3,Swallowed,pos\n'
    )
    write(folder / "empty.csv", "")
    lines = [
        json.dumps({"id": "j1", "text": "Nice film", "label": "pos"}),
        "{bad json",
        "[1, 2]",
        json.dumps({"id": "j4", "label": "pos"}),
        json.dumps({"id": "j5", "text": 42, "label": "pos"}),
        "",
        json.dumps({"id": "j7", "text": None, "label": "neg"}),
        json.dumps({"id": "j8", "text": "Good fun", "label": "positive"}),
    ]
    write(folder / "reviews.jsonl", "\n".join(lines) + "\n")
    outputs = {}
    for input_format in ("csv", "jsonl"):
        out = tmp_path_factory.mktemp(f"out_{input_format}")
        manifest = ingest.run(
            [
                "--input",
                str(folder / f"*.{input_format}"),
                "--input_format",
                input_format,
                "--output_dir",
                str(out),
                "--max_quarantine_rate",
                "1.0",
                "--min_count",
                "1",
                "--test_fraction",
                "0.3",
            ]
        )
        outputs[input_format] = (manifest, quarantine_by_id(out), kept_ids(out))
    return outputs


@pytest.mark.parametrize(
    ("record_id", "reason", "detail"),
    [
        ("reviews.csv:3", reasons.MALFORMED_ROW, "expected 3 columns, got 5"),
        ("c3", reasons.MISSING_LABEL, "label column"),
        ("c4", reasons.UNKNOWN_LABEL, "maybe"),
        ("c1", reasons.DUPLICATE_ID, "already used"),
        ("broken_quote.csv:3", reasons.MALFORMED_ROW, "unbalanced quote"),
    ],
)
def test_csv_case(tabular_run, record_id, reason, detail):
    _, quarantined, _ = tabular_run["csv"]
    assert quarantined[record_id]["reason"] == reason and detail in quarantined[record_id]["detail"], quarantined.get(
        record_id
    )


def test_csv_labels_given_as_words_are_kept_and_empty_file_is_listed(tabular_run):
    manifest, _, kept = tabular_run["csv"]
    assert {"c5", "c6", "c7", "q1"} <= kept
    assert manifest["counts"]["input_files"] == 3 and manifest["counts"]["balanced"]
    assert manifest["outputs"]["inputs.tsv"]["records"] == 3


@pytest.mark.parametrize(
    ("record_id", "reason"),
    [
        ("reviews.jsonl:2", reasons.MALFORMED_ROW),
        ("reviews.jsonl:3", reasons.MALFORMED_ROW),
        ("j4", reasons.MISSING_TEXT),
        ("j5", reasons.NON_STRING_TEXT),
        ("reviews.jsonl:6", reasons.EMPTY_TEXT),
        ("j7", reasons.MISSING_TEXT),
    ],
)
def test_jsonl_case(tabular_run, record_id, reason):
    _, quarantined, _ = tabular_run["jsonl"]
    assert quarantined[record_id]["reason"] == reason


def test_jsonl_counts_balance(tabular_run):
    manifest, quarantined, kept = tabular_run["jsonl"]
    assert kept == {"j1", "j8"}
    assert manifest["counts"]["records_in"] == 8 == len(kept) + len(quarantined)


def test_critical_validation_failure_exits_with_one_line(tmp_path, capsys):
    """Default --max_quarantine_rate 0.05 on a half-broken input: exit 2, one line naming it."""
    folder = tmp_path / "in"
    write(
        folder / "a.jsonl", "\n".join([json.dumps({"text": "ok review", "label": "pos"}), "{broken", "[]", "{}"]) + "\n"
    )
    code = common.main_with_user_errors(
        ingest.run,
        ["--input", str(folder / "a.jsonl"), "--input_format", "jsonl", "--output_dir", str(tmp_path / "out")],
    )
    err = capsys.readouterr().err
    assert code == 2
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert "quarantine_rate" in error_lines[0] and "0.75" in error_lines[0] and "validation.html" in error_lines[0]
    assert (tmp_path / "out" / "validation.html").exists() and (tmp_path / "out" / "manifest.json").exists()
