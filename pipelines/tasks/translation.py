"""Translation: a record is a sentence pair; the model maps the source sentence to the target one.

Records: ``text`` is the source sentence, ``target`` the target sentence (the ``parallel``
reader's two aligned lines, or the ``--source_column`` / ``--target_column`` of a table).
Both sides are cleaned with the same TextSpec (case and punctuation kept by default:
translations are read by people) and get their own vocabulary, or one joint vocabulary
(``--joint_vocabulary``), learned on the training side only.

Pair checks (before the shared row checks, so the reasons name the side): an empty side,
an over-long side (``--max_chars``), a character-length ratio beyond ``--max_length_ratio``,
a target identical to its source (an untranslated copy), undecodable text on either side.
Dedupe keys on the cleaned source: of pairs sharing a source one is kept (the test one if
any, so a test source never trains), the others are quarantined as ``duplicate_pair`` when
their target is the same too, else ``duplicate_text``.
"""

from __future__ import annotations

import argparse
from typing import Any

from pipelines import sources
from pipelines.common import stable_fraction
from pipelines.tasks.base import TEXT, Task, TextField
from pipelines.transforms import decode_text
from schemas import names, reasons
from schemas.cli import UserError
from textprep.spec import TextSpec

SOURCE = TextField("source", TEXT.key, names.FEATURE_TOKEN_IDS, names.SOURCE_VOCAB_FILE)
TARGET = TextField("target", "target", "target_ids", names.TARGET_VOCAB_FILE)
_LANGUAGE = r"^[A-Za-z][A-Za-z0-9_-]{0,15}$"


class PairCheck:
    """RawRecord with ``text`` (source) and ``target`` -> (record, None) or (None, (reason, detail)).

    Decodes both sides (``--encoding``, then ``--fallback_encoding``) so the shared checks
    receive the source as a string; picklable (a plain object with its settings).
    """

    def __init__(self, max_chars: int, max_length_ratio: float, encoding: str, fallback_encoding: str | None):
        self.max_chars = max_chars
        self.max_length_ratio = max_length_ratio
        self.encoding = encoding
        self.fallback_encoding = fallback_encoding

    def _decode(self, value: Any, side: str, repairs: set[str], encoding: str):
        if value is None:
            return None, (reasons.MISSING_TEXT, f"no {side} text")
        if isinstance(value, bytes):
            text, made, failure = decode_text(value, encoding, self.fallback_encoding)
            if failure:
                return None, (failure[0], f"{side}: {failure[1]}")
            repairs.update(made)
            return text, None
        if isinstance(value, str):
            if any("\udc80" <= ch <= "\udcff" for ch in value):
                return self._decode(value.encode("utf-8", "surrogateescape"), side, repairs, "utf-8")
            return value, None
        return None, (reasons.NON_STRING_TEXT, f"{side} is a {type(value).__name__}, not a string")

    def __call__(self, record: dict[str, Any]):
        sides, repairs = {}, set()
        # --encoding auto: each file's detected encoding rides on the record.
        given = "utf-8" if self.encoding == "auto" else self.encoding
        encodings = {"source": record.get("encoding") or given}
        encodings["target"] = record.get("target_encoding") or encodings["source"]
        for side, key, empty in (("source", "text", reasons.EMPTY_SOURCE), ("target", "target", reasons.EMPTY_TARGET)):
            text, failure = self._decode(record.get(key), side, repairs, encodings[side])
            if failure:
                return None, failure
            if not text.strip():
                return None, (empty, f"empty or whitespace-only {side}")
            if len(text) > self.max_chars:
                return None, (reasons.SIDE_TOO_LONG, f"{side}: {len(text)} characters > --max_chars {self.max_chars}")
            sides[side] = text
        source, target = sides["source"].strip(), sides["target"].strip()
        if source == target:
            return None, (reasons.SOURCE_EQUALS_TARGET, "the target is a copy of the source")
        # +1: a one-word sentence against a three-word one is not an outlier worth a ratio of 3.
        ratio = (max(len(source), len(target)) + 1) / (min(len(source), len(target)) + 1)
        if ratio > self.max_length_ratio:
            return None, (
                reasons.LENGTH_RATIO_OUTLIER,
                f"{len(source)} source vs {len(target)} target characters: ratio {ratio:.1f} > "
                f"--max_length_ratio {self.max_length_ratio}",
            )
        return {**record, "text": sides["source"], "target": sides["target"], "repairs": sorted(repairs)}, None


class Translation(Task):
    name = names.TASK_TRANSLATION
    description = "source sentence -> BiLSTM encoder + attention LSTM decoder -> target sentence"
    raw_suite = "raw_text_rows"  # the source side as read; pair checks are quarantine reasons
    dataset_suite = "translation_dataset"
    default_max_chars = 1_000  # a sentence, not a document
    default_test_fraction = 0.0  # parallel corpora come with their test set (test_2016_flickr)
    text_fields = (SOURCE, TARGET)

    def add_ingest_flags(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("translation (--task translation)")
        group.add_argument(
            "--source_language",
            default=None,
            help="Language code of the source side: with --input_format parallel, the STEM.CODE[.gz] files read "
            "(e.g. de).",
        )
        group.add_argument("--target_language", default=None, help="Language code of the target side (e.g. en).")
        group.add_argument(
            "--source_column", default="source", help="Tabular inputs: column with the source (default: %(default)s)."
        )
        group.add_argument(
            "--target_column", default="target", help="Tabular inputs: column with the target (default: %(default)s)."
        )
        group.add_argument(
            "--max_length_ratio",
            type=float,
            default=3.0,
            help="Quarantine pairs whose (longer + 1) / (shorter + 1) character ratio exceeds this "
            "(default: %(default)s).",
        )
        group.add_argument(
            "--joint_vocabulary",
            action="store_true",
            help="One vocabulary for both sides (written to both vocab files), e.g. a joint WordPiece.",
        )

    def check_args(self, args: argparse.Namespace) -> None:
        import re

        for flag in ("source_language", "target_language"):
            value = getattr(args, flag)
            if value is None and args.input_format == "parallel":
                raise UserError(f"--input_format parallel needs --{flag}")
            if value is not None and not re.match(_LANGUAGE, value):
                raise UserError(f"--{flag} {value!r} is not a language code like de or en")
        if args.source_language and args.source_language == args.target_language:
            raise UserError("--source_language and --target_language must differ")
        if args.max_length_ratio < 1.0:
            raise UserError(f"--max_length_ratio must be >= 1, got {args.max_length_ratio}")
        if args.input_format in ("csv", "jsonl", "parquet"):
            args.text_column = args.source_column
        elif args.input_format != "parallel":
            raise UserError(
                f"--task translation reads sentence pairs: --input_format parallel, csv, jsonl or parquet, "
                f"not {args.input_format}"
            )
        if args.input_format == "parallel":
            sources.check_parallel_files(args.input, args.source_language, args.target_language, args.encoding)

    def text_spec(self, args: argparse.Namespace) -> TextSpec:
        return TextSpec(
            lowercase=False if args.lowercase is None else args.lowercase,
            strip_html=False if args.strip_html is None else args.strip_html,
            whitespace=args.whitespace or "collapse",
            tokenizer=args.tokenizer or "wordpiece",
            reserved_tokens=names.GENERATIVE_RESERVED_TOKENS,
        )

    def vocabulary_groups(self, args: argparse.Namespace) -> list[tuple[TextField, ...]]:
        return [(SOURCE, TARGET)] if args.joint_vocabulary else [(SOURCE,), (TARGET,)]

    def columns(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"target": args.target_column}

    def reader_options(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"languages": (args.source_language, args.target_language)}

    # ------------------------------------------------------------------ records
    def raw_check(self, args: argparse.Namespace):
        return PairCheck(args.max_chars, args.max_length_ratio, args.encoding, args.fallback_encoding)

    def split(self, record: dict[str, Any], args: argparse.Namespace):
        split = record.get("split")
        if split == names.SPLIT_UNSUP:
            split = names.SPLIT_TRAIN
        if split not in names.SPLITS:
            # No split from the file name or a column: carve test, then validation, from the id's hash.
            split = names.SPLIT_TEST if stable_fraction(record["id"], salt="test:") < args.test_fraction else None
            split = split or names.SPLIT_TRAIN
            if (
                split == names.SPLIT_TRAIN
                and stable_fraction(record["id"], salt="validation:") < args.validation_fraction
            ):
                split = names.SPLIT_VALIDATION
        yield {**record, "split": split}

    def features(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            names.FEATURE_ID: record["id"],
            names.FEATURE_SOURCE_IDS: record[SOURCE.ids_key],
            names.FEATURE_TARGET_IDS: record[TARGET.ids_key],
            names.FEATURE_SOURCE_LENGTH: len(record[SOURCE.ids_key]),
            names.FEATURE_TARGET_LENGTH: len(record[TARGET.ids_key]),
            names.FEATURE_SOURCE_TEXT: record[SOURCE.key],
            names.FEATURE_TARGET_TEXT: record[TARGET.key],
        }

    # ------------------------------------------------------------------ validation and manifest
    def dataset_row(self, record: dict[str, Any]) -> dict[str, Any]:
        source, target = len(record[SOURCE.ids_key]), len(record[TARGET.ids_key])
        return {
            "id": record["id"],
            "source_tokens": source,
            "target_tokens": target,
            "length_ratio": target / source if source else None,
        }

    def dataset_figures(self, splits: dict[str, Any]) -> dict[str, Any]:
        def oov(split: str, side: str) -> float:
            stats = splits[split]
            return (
                stats["oov_rate"] if side == SOURCE.name else stats.get("fields", {}).get(side, {}).get("oov_rate", 0.0)
            )

        return {
            "train_records": splits[names.SPLIT_TRAIN]["records"],
            "validation_records": splits[names.SPLIT_VALIDATION]["records"],
            "validation_source_oov_rate": oov(names.SPLIT_VALIDATION, SOURCE.name),
            "validation_target_oov_rate": oov(names.SPLIT_VALIDATION, TARGET.name),
            "test_source_oov_rate": oov(names.SPLIT_TEST, SOURCE.name),
        }

    def manifest_fields(self, args: argparse.Namespace) -> dict[str, Any]:
        return {
            "labels": [],
            "source_language": args.source_language,
            "target_language": args.target_language,
        }


TASK = Translation()
