"""Composite transforms on a few hand-written records (TestPipeline + assert_that)."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines import transforms
from pipelines.common import QUARANTINE_TAG
from schemas import names, reasons


def raw(record_id, text, split="train", label="pos", source=None):
    return {
        "id": record_id,
        "source": source or f"src/{record_id}",
        "split": split,
        "label": label,
        "text": text,
        "extra": {},
    }


def text_record(record_id, text, split="train", label=1):
    return {"id": record_id, "source": f"src/{record_id}", "split": split, "label": label, "text": text, "extra": {}}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (raw("a", None), reasons.MISSING_TEXT),
        (raw("a", 12), reasons.NON_STRING_TEXT),
        (raw("a", b"caf\xe9"), reasons.UNDECODABLE_TEXT),
        (raw("a", "bad \udcff"), reasons.UNDECODABLE_TEXT),
        (raw("a", "   \n\t"), reasons.EMPTY_TEXT),
        (raw("a", "x" * 101), reasons.TEXT_TOO_LONG),
        (raw("a", "fine", label=None), reasons.MISSING_LABEL),
        (raw("a", "fine", label="great"), reasons.UNKNOWN_LABEL),
    ],
)
def test_check_raw_record_rejects_with_reason(record, reason):
    checked, failure = transforms.check_raw_record(record, max_chars=100, require_label=True)
    assert checked is None
    assert failure[0] == reason


@pytest.mark.parametrize(("label", "expected"), [("pos", 1), ("Negative", 0), (" 1 ", 1), (0, 0), (1.0, 1), ("neg", 0)])
def test_labels_given_as_words_or_numbers(label, expected):
    checked, failure = transforms.check_raw_record(raw("a", "fine", label=label), 100, True)
    assert failure is None and checked["label"] == expected


def test_unsup_and_unlabeled_records_pass_without_label():
    checked, _ = transforms.check_raw_record(raw("a", b"fine", split="unsup", label=None), 100, True)
    assert checked["label"] == names.UNLABELED and checked["text"] == "fine"
    checked, _ = transforms.check_raw_record(raw("a", "fine", split=None, label=None), 100, True)
    assert checked["label"] == names.UNLABELED
    # Scoring ignores labels entirely.
    checked, _ = transforms.check_raw_record(raw("a", "fine", label="bogus"), 100, True, check_label=False)
    assert checked is not None


def test_check_rows_routes_failures_to_quarantine():
    with TestPipeline() as p:
        out = (
            p
            | beam.Create([raw("ok", "Nice"), raw("empty", " "), raw("bad", "x", label="meh")])
            | transforms.CheckRows(100)
        )
        assert_that(
            out.records | "Ids" >> beam.Map(lambda r: (r["id"], r["label"])), equal_to([("ok", 1)]), label="records"
        )
        assert_that(
            out[QUARANTINE_TAG] | "Reasons" >> beam.Map(lambda q: (q["id"], q["reason"])),
            equal_to([("empty", reasons.EMPTY_TEXT), ("bad", reasons.UNKNOWN_LABEL)]),
            label="quarantine",
        )


def test_clean_text_cleans_and_quarantines_markup_only():
    with TestPipeline() as p:
        out = (
            p
            | beam.Create([text_record("a", "Good<br />FILM"), text_record("b", "<br /><i></i>")])
            | transforms.CleanText()
        )
        assert_that(
            out.records | "Texts" >> beam.Map(lambda r: (r["id"], r["text"])),
            equal_to([("a", "good film")]),
            label="records",
        )
        assert_that(
            out[QUARANTINE_TAG] | "Reasons" >> beam.Map(lambda q: (q["id"], q["reason"])),
            equal_to([("b", reasons.EMPTY_AFTER_CLEANING)]),
            label="quarantine",
        )


def test_drop_duplicates_keeps_test_copy_and_first_id(tmp_path):
    records = [
        text_record("train/1", "same text", split="train"),
        text_record("test/9", "same text", split="test"),
        text_record("train/2", "other", split="train"),
        text_record("train/3", "other", split="train"),
        {**text_record("train/2", "third", split="train"), "source": "src/zz-later-file"},  # duplicate id
    ]
    with TestPipeline() as p:
        out = p | beam.Create(records) | transforms.DropDuplicates(str(tmp_path / "dedupe"))
        assert_that(
            out["records"] | "Kept" >> beam.Map(lambda r: (r["id"], r["split"])),
            equal_to([("test/9", "test"), ("train/2", "train")]),
            label="kept",
        )
        assert_that(
            out[QUARANTINE_TAG] | "Reasons" >> beam.Map(lambda q: (q["id"], q["reason"])),
            equal_to(
                [
                    ("train/1", reasons.DUPLICATE_OF_TEST),
                    ("train/3", reasons.DUPLICATE_TEXT),
                    ("train/2", reasons.DUPLICATE_ID),
                ]
            ),
            label="quarantine",
        )
    assert list(tmp_path.iterdir()) == []  # the spill files are gone


def test_assign_split_is_deterministic_and_keeps_given_splits():
    records = [text_record(f"train/{i}", "t") for i in range(2000)]
    first = [transforms.assign_split(r, 0.1, 0.2)["split"] for r in records]
    assert first == [transforms.assign_split(r, 0.1, 0.2)["split"] for r in records]
    share = first.count(names.SPLIT_VALIDATION) / len(first)
    assert 0.08 < share < 0.12
    assert set(first) == {names.SPLIT_TRAIN, names.SPLIT_VALIDATION}
    assert transforms.assign_split(text_record("x", "t", split="test"), 0.5, 0.5)["split"] == names.SPLIT_TEST
    unsplit = [transforms.assign_split(text_record(f"r{i}", "t", split=None), 0.0, 0.25)["split"] for i in range(2000)]
    assert 0.22 < unsplit.count(names.SPLIT_TEST) / 2000 < 0.28
    assert (
        transforms.assign_split(text_record("u", "t", split=None, label=names.UNLABELED), 0.1, 0.2)["split"]
        == names.SPLIT_UNSUP
    )


def test_top_k_vocabulary_order_and_min_count():
    vocabulary = transforms.top_k_vocabulary({"b": 3, "a": 3, "c": 5, "rare": 1}, max_size=5, min_count=2)
    assert vocabulary == [(names.PAD_TOKEN, 0), (names.OOV_TOKEN, 0), ("c", 5), ("a", 3), ("b", 3)]
    assert transforms.top_k_vocabulary({"b": 3, "a": 3, "c": 5}, max_size=3, min_count=1)[-1] == ("c", 5)
    with pytest.raises(ValueError):
        transforms.top_k_vocabulary({}, max_size=2, min_count=1)


def test_top_k_vocabulary_of_bytes_keys_is_that_of_str_keys():
    """Ingest counts UTF-8 bytes: byte order must break ties as str's code-point order does."""
    import random

    rng = random.Random(0)
    alphabet = ["a", "z", "é", "ß", "日", "本", "😀", "[UNK]", "[PAD]", "\u00ff", "ÿ", "Ā"]
    for _ in range(50):
        counts = {"".join(rng.choices(alphabet, k=rng.randint(1, 3))): rng.choice([1, 2, 2, 3, 5]) for _ in range(40)}
        max_size, min_count = rng.choice([3, 8, 20, 60]), rng.choice([1, 2])
        encoded = {token.encode("utf-8"): count for token, count in counts.items()}
        expected = transforms.top_k_vocabulary(counts, max_size, min_count)
        assert transforms.top_k_vocabulary(encoded, max_size, min_count) == expected
        assert all(type(token) is str for token, _ in expected)


def test_wordpiece_of_bytes_keys_is_that_of_str_keys():
    from textprep import vocabulary

    counts = {"naïve": 5, "café": 4, "cafés": 3, "film": 6, "films": 2, "日本": 2, "a": 1}
    encoded = {token.encode("utf-8"): count for token, count in counts.items()}
    expected = vocabulary.learn_wordpiece(counts, 40, 2, names.RESERVED_TOKENS)
    assert vocabulary.learn_wordpiece(encoded, 40, 2, names.RESERVED_TOKENS) == expected
    assert len(expected) > len(names.RESERVED_TOKENS) and all(type(piece) is str for piece, _ in expected)


def test_dedupe_buckets_depend_only_on_the_id_or_the_text():
    record = text_record("doc/1", "same words")
    other = {**text_record("doc/1", "other words"), "source": "elsewhere"}
    bucket, key = transforms.keyed_by_id_bucket(record)
    assert 0 <= bucket < transforms.DEDUPE_BUCKETS and key == transforms.dedupe_key(record)
    assert transforms.keyed_by_id_bucket(other)[0] == bucket  # a shared id meets in one bucket
    same_text = transforms.dedupe_key(text_record("doc/2", "same words"))
    assert transforms.text_bucket(same_text) == transforms.text_bucket(key)  # a shared text meets in one bucket
    assert len({transforms.keyed_by_id_bucket(text_record(f"id{i}", "x"))[0] for i in range(2000)}) > 200


def test_build_vocabulary_and_token_ids():
    records = [text_record("a", "good good film"), text_record("b", "bad film"), text_record("c", "good")]
    with TestPipeline() as p:
        texts = p | beam.Create(records)
        vocabulary = texts | transforms.BuildVocabulary(max_size=4, min_count=2)
        assert_that(
            vocabulary,
            equal_to([[(names.PAD_TOKEN, 0), (names.OOV_TOKEN, 0), ("good", 3), ("film", 2)]]),
            label="vocab",
        )
        ids = texts | transforms.ToTokenIds(vocabulary) | beam.Map(lambda r: (r["id"], r["token_ids"]))
        assert_that(ids, equal_to([("a", [2, 2, 3]), ("b", [names.OOV_ID, 3]), ("c", [2])]), label="ids")


def test_build_vocabulary_of_no_records_is_the_reserved_tokens():
    # CombineGlobally's default value: what a run whose vocabulary splits hold no text gets.
    with TestPipeline() as p:
        vocabulary = p | beam.Create([], reshuffle=False) | transforms.BuildVocabulary(max_size=4, min_count=1)
        assert_that(vocabulary, equal_to([[(names.PAD_TOKEN, 0), (names.OOV_TOKEN, 0)]]))


def test_dataset_stats():
    records = [
        {**text_record("a", "x", split="train", label=1), "token_ids": [2, 3, 1]},
        {**text_record("b", "x", split="train", label=0), "token_ids": [2]},
        {**text_record("c", "x", split="unsup", label=names.UNLABELED), "token_ids": [1, 1]},
    ]
    with TestPipeline() as p:
        stats = p | beam.Create(records) | beam.CombineGlobally(transforms.DatasetStatsFn())
        expected = {
            "train": {
                "records": 2,
                "labels": {"neg": 1, "pos": 1},
                "tokens": 4,
                "chars": 2,
                "oov_rate": 0.25,
                "token_length": {"p50": 1, "p90": 3, "p95": 3, "p99": 3, "min": 1, "max": 3, "mean": 2.0},
            },
            "unsup": {
                "records": 1,
                "labels": {"unlabeled": 1},
                "tokens": 2,
                "chars": 1,
                "oov_rate": 1.0,
                "token_length": {"p50": 2, "p90": 2, "p95": 2, "p99": 2, "min": 2, "max": 2, "mean": 2.0},
            },
        }
        assert_that(stats, equal_to([expected]))


def test_packed_list_combine_keeps_every_element_through_compact_and_merge():
    fn = transforms.PackedListFn()
    packed = fn.compact(fn.add_input(fn.add_input(fn.create_accumulator(), ("a", 1)), ("b", 2)))
    assert packed[0] == [] and len(packed[1]) == 1  # what leaves the worker: one blob
    loose = fn.add_input(fn.create_accumulator(), b"raw bytes")
    merged = fn.merge_accumulators([packed, loose, fn.compact(fn.create_accumulator())])
    assert sorted(map(repr, fn.extract_output(merged))) == sorted(map(repr, [("a", 1), ("b", 2), b"raw bytes"]))


def test_packed_list_packs_while_it_fills():
    fn = transforms.PackedListFn()
    accumulator = fn.create_accumulator()
    for n in range(2 * transforms.PACK_EVERY + 5):
        accumulator = fn.add_input(accumulator, ("key", n))
    elements, blobs = accumulator
    assert len(elements) == 5 and len(blobs) == 2  # never more than PACK_EVERY elements held as objects
    output = fn.extract_output(fn.merge_accumulators([fn.compact(accumulator), fn.create_accumulator()]))
    assert sorted(output) == [("key", n) for n in range(2 * transforms.PACK_EVERY + 5)]


def test_token_counts_merge_into_the_first_accumulator_and_leave_the_others():
    fn = transforms.TokenCountsFn()
    first = fn.add_input(fn.create_accumulator(), {"a": 2, "b": 1})
    second = fn.add_input(fn.create_accumulator(), {"b": 3, "c": 1})
    merged = fn.merge_accumulators([first, second])
    assert merged is first and second == {"b": 3, "c": 1}
    assert fn.extract_output(merged) == {"a": 2, "b": 4, "c": 1}
    assert fn.merge_accumulators([]) == {}


def test_packed_list_groups_per_key_in_a_pipeline():
    with TestPipeline() as p:
        grouped = (
            p
            | beam.Create([(k % 3, k) for k in range(100)])
            | beam.CombinePerKey(transforms.PackedListFn())
            | beam.MapTuple(lambda key, values: (key, sorted(values)))
        )
        assert_that(grouped, equal_to([(r, list(range(r, 100, 3))) for r in range(3)]))
