"""Language modelling: a record is a document (or one long text); the model predicts the next token.

Splits: documents by a hash of their id (as for classification), or, with
``--split_by position``, each document cut by characters: the first
1 - validation_fraction - test_fraction of it train, then validation, then test.
For one long text (tiny Shakespeare) `--split_by position --validation_fraction 0.1
--test_fraction 0` is exactly nanoGPT's split (train = text[:int(n * 0.9)]), so
figures compare with its published ones.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from pipelines.common import stable_fraction
from pipelines.tasks.base import Task
from schemas import arrow, names, reasons
from schemas.cli import UserError
from textprep.spec import TextSpec

SPLIT_BY = ("hash", "position")


class LanguageModel(Task):
    name = names.TASK_LANGUAGE_MODEL
    description = "text -> causal stacked LSTM -> next-token probabilities; generation and log-likelihood"
    raw_suite = "raw_text_rows"  # no label expectation: a language model's records have none to check
    dataset_suite = "lm_dataset"
    # One long document (a book, a corpus file) is one record; the classifier's 100k-character bound would refuse it.
    default_max_chars = 50_000_000
    default_test_fraction = 0.0  # nanoGPT's split has train and validation only

    def add_ingest_flags(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("language model (--task language_model)")
        group.add_argument(
            "--split_by",
            default="hash",
            choices=SPLIT_BY,
            help="hash: whole documents by a hash of their id; position: every document cut by characters into "
            "train | validation | test (nanoGPT's split of one long text; default: %(default)s).",
        )

    def check_args(self, args: argparse.Namespace) -> None:
        if args.split_by == "position" and args.validation_fraction + args.test_fraction >= 1.0:
            raise UserError("--validation_fraction + --test_fraction must be < 1 with --split_by position")

    def text_spec(self, args: argparse.Namespace) -> TextSpec:
        tokenizer = args.tokenizer or "char"
        # A character model sees the text as written (case, layout, punctuation); word models get markup removed
        # and whitespace collapsed. Case is kept either way: generated text is read by people.
        characters = tokenizer == "char"
        return TextSpec(
            lowercase=False if args.lowercase is None else args.lowercase,
            strip_html=(not characters) if args.strip_html is None else args.strip_html,
            whitespace=args.whitespace or ("keep" if characters else "collapse"),
            tokenizer=tokenizer,
            reserved_tokens=names.GENERATIVE_RESERVED_TOKENS,
        )

    def split(self, record: dict[str, Any], args: argparse.Namespace):
        split = record.get("split")
        if split == names.SPLIT_UNSUP:
            split = names.SPLIT_TRAIN  # unlabeled text is what a language model trains on
        if split not in names.SPLITS and args.split_by == "position":
            yield from cut_by_position(record, args.validation_fraction, args.test_fraction)
            return
        if split not in names.SPLITS:
            split = names.SPLIT_TEST if stable_fraction(record["id"], salt="test:") < args.test_fraction else None
            split = split or names.SPLIT_TRAIN
        if split == names.SPLIT_TRAIN and stable_fraction(record["id"], salt="validation:") < args.validation_fraction:
            split = names.SPLIT_VALIDATION
        yield {**record, "split": split}

    def manifest_fields(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"labels": [], "split_by": args.split_by}

    # ------------------------------------------------------------------ bulk scoring: log-likelihood per text
    score_signature = names.LOG_LIKELIHOOD_SIGNATURE
    score_outputs = ("total_nats", "nats_per_token", "bits_per_char", "num_tokens", "num_chars", "num_oov")
    scored_suite = "lm_scored_output"

    def scored_schema(self, passthrough: list[str]):
        return arrow.with_passthrough(arrow.LM_SCORED_FIELDS, passthrough)

    def scored_row(self, inference: dict[str, Any]) -> dict[str, Any] | tuple[str, str]:
        if inference["num_tokens"] == 0:
            return reasons.EMPTY_AFTER_CLEANING, "no tokens after cleaning"
        nats = float(inference["nats_per_token"])
        return {
            "nats_per_token": nats,
            "bits_per_char": float(inference["bits_per_char"]),
            "perplexity": math.exp(min(nats, 80.0)),
            "total_nats": float(inference["total_nats"]),
            "num_tokens": int(inference["num_tokens"]),
            "num_chars": int(inference["num_chars"]),
            "num_oov": int(inference["num_oov"]),
        }

    def scored_row_features(self, row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in ("id", "nats_per_token", "bits_per_char")}


def cut_by_position(record: dict[str, Any], validation_fraction: float, test_fraction: float):
    """One cleaned document -> up to three records: train, validation, test character ranges (empty ones left out).

    Record ids are ID#train, ID#validation, ID#test; every piece after the first carries
    "continues": True, so counts can tell pieces from documents (records in = documents).
    """
    text = record["text"]
    n = len(text)
    # int(n * 0.9), as nanoGPT computes its cut.
    train_end = int(n * (1.0 - validation_fraction - test_fraction))
    validation_end = int(n * (1.0 - test_fraction))
    pieces = [
        (names.SPLIT_TRAIN, text[:train_end]),
        (names.SPLIT_VALIDATION, text[train_end:validation_end]),
        (names.SPLIT_TEST, text[validation_end:]),
    ]
    first = True
    for split, piece in pieces:
        if not piece:
            continue
        yield {**record, "id": f"{record['id']}#{split}", "split": split, "text": piece, "continues": not first}
        first = False


TASK = LanguageModel()
