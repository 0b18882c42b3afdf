"""What a task tells the shared pipelines. Subclasses live in pipelines/tasks/TASK.py.

Element shapes are those of `pipelines.common` (RawRecord, TextRecord); a record that
reached ``token_ids`` is a TextRecord plus ``token_ids: list[int]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from schemas import names
from textprep.spec import TextSpec


@dataclasses.dataclass(frozen=True)
class TextField:
    """One text of a record: where the text and its ids live on the record, and its vocabulary file.

    Every task has the field "text" (the reader's text; translation's source side); a task
    with a second text (translation's target) lists it too, and ingest cleans, counts and
    looks up each field with the dataset's one TextSpec.
    """

    name: str  # what the manifest and the statistics call it
    key: str  # record key of the text
    ids_key: str  # record key of its token ids
    vocab_file: str  # its vocabulary's file name in the dataset directory


TEXT = TextField("text", "text", names.FEATURE_TOKEN_IDS, names.VOCAB_FILE)


class Task:
    """Defaults describe a task with unlabeled text; subclasses override what differs."""

    name: str = ""
    description: str = ""
    labels: tuple[str, ...] = ()  # label names; index = label id
    # Validation suites (schemas/expectations/NAME.json) of the ingest run: raw rows and the written dataset.
    raw_suite = "raw_rows"
    dataset_suite = "cleaned_dataset"
    # Splits whose text may build the vocabulary (never validation or test).
    default_vocab_splits = (names.SPLIT_TRAIN, names.SPLIT_UNSUP)
    default_max_chars = 100_000
    default_test_fraction = 0.2  # share of records without a given split sent to test

    # ------------------------------------------------------------------ ingest options
    def add_ingest_flags(self, parser: argparse.ArgumentParser) -> None:
        """Flags only this task has (shown in --help under the task's name)."""

    def check_args(self, args: argparse.Namespace) -> None:
        """Validate and fill in this task's defaults on the parsed ingest options (UserError if wrong)."""

    def text_spec(self, args: argparse.Namespace) -> TextSpec:
        """Cleaning and tokenizer of this dataset from the options (None = the task's default)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ texts and vocabularies
    text_fields: tuple[TextField, ...] = (TEXT,)

    def vocabulary_groups(self, args: argparse.Namespace) -> list[tuple[TextField, ...]]:
        """Fields that share one vocabulary (its tokens counted over all of them); one group per vocabulary."""
        return [(field,) for field in self.text_fields]

    def columns(self, args: argparse.Namespace) -> dict[str, Any]:
        """Extra `sources.ColumnNames` fields of tabular inputs (e.g. the target column)."""
        return {}

    def reader_options(self, args: argparse.Namespace) -> dict[str, Any]:
        """Extra keyword arguments of `sources.ReadRawRecords` (e.g. the languages of parallel files)."""
        return {}

    # ------------------------------------------------------------------ records
    def raw_check(self, args: argparse.Namespace) -> Callable[[dict[str, Any]], Any] | None:
        """A picklable check run on each RawRecord before the shared row checks: record -> (record, None) or
        (None, (reason, detail)). None: the task has no checks of its own."""
        return None

    def check_rows_options(self, args: argparse.Namespace) -> dict[str, Any]:
        """Keyword arguments of `transforms.CheckRows` beyond max_chars and the encodings."""
        return {"require_label": False, "check_label": False}

    def split(self, record: dict[str, Any], args: argparse.Namespace) -> Iterable[dict[str, Any]]:
        """A deduplicated TextRecord -> the record(s) with their final "split"."""
        raise NotImplementedError

    def features(self, record: dict[str, Any]) -> dict[str, Any]:
        """tf.train.Example features of a record with token_ids: {key: int | list[int] | str}."""
        return {
            names.FEATURE_ID: record["id"],
            names.FEATURE_TOKEN_IDS: record["token_ids"],
            names.FEATURE_LENGTH: len(record["token_ids"]),
        }

    def example(self, record: dict[str, Any]) -> tuple[str, bytes]:
        """(shard sort key, serialized tf.train.Example) of a record with token_ids."""
        from schemas import tfrecord

        # Sorted by a hash of the id: a fixed order (same bytes on every rerun) that
        # does not group labels together the way "train/neg/..." < "train/pos/..." would.
        order = hashlib.sha256(record["id"].encode("utf-8")).hexdigest()[:16] + record["id"]
        return order, tfrecord.serialize_example(self.features(record))

    # ------------------------------------------------------------------ validation and manifest
    def dataset_row(self, record: dict[str, Any]) -> dict[str, Any]:
        """Validation columns of a written record (the dataset suite's row expectations)."""
        return {"id": record["id"], "num_tokens": len(record["token_ids"])}

    def dataset_figures(self, splits: dict[str, Any]) -> dict[str, Any]:
        """Run-level figures of the dataset suite, from the manifest's per-split statistics."""
        return {
            "train_records": splits[names.SPLIT_TRAIN]["records"],
            "validation_records": splits[names.SPLIT_VALIDATION]["records"],
            "validation_oov_rate": splits[names.SPLIT_VALIDATION]["oov_rate"],
            "test_oov_rate": splits[names.SPLIT_TEST]["oov_rate"],
        }

    def manifest_fields(self, args: argparse.Namespace) -> dict[str, Any]:
        """Task-specific top-level fields of the dataset manifest."""
        return {"labels": list(self.labels)}

    # ------------------------------------------------------------------ bulk scoring (pipelines.score)
    score_signature = names.SERVING_SIGNATURE  # the exported model's signature scoring calls
    score_outputs: tuple[str, ...] = ()  # its outputs a row is made from
    scored_suite = "scored_output"  # validation suite of the scored rows

    def scored_schema(self, passthrough: list[str]):
        """pyarrow.Schema of the scored Parquet (pass-through columns last)."""
        raise NotImplementedError

    def scored_row(self, inference: dict[str, Any]) -> dict[str, Any] | tuple[str, str]:
        """The task's columns of a scored row from the signature's outputs, or (reason, detail) to quarantine it."""
        raise NotImplementedError

    def scored_row_features(self, row: dict[str, Any]) -> dict[str, Any]:
        """Validation columns of a scored row (the scored suite's row expectations)."""
        return {"id": row["id"]}

    def scored_group(self, row: dict[str, Any]) -> str | None:
        """A category counted per run in the scoring manifest ("predicted"), or None."""
        return None
