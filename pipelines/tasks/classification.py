"""Sentiment classification: a record is a text and a label (neg/pos); the model scores P(pos)."""

from __future__ import annotations

import argparse
from typing import Any

from pipelines import transforms
from pipelines.tasks.base import Task
from schemas import arrow, names, reasons
from textprep.spec import TextSpec


class Classification(Task):
    name = names.TASK_CLASSIFICATION
    description = "text + label -> (Bi)LSTM classifier -> probability and label"
    labels = names.LABELS

    def add_ingest_flags(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("classification (--task classification)")
        group.add_argument(
            "--min_label_share",
            type=float,
            default=0.2,
            help="Warn if the train split's positive share is below this (default: %(default)s).",
        )
        group.add_argument(
            "--max_label_share",
            type=float,
            default=0.8,
            help="Warn if the train split's positive share is above this (default: %(default)s).",
        )

    def text_spec(self, args: argparse.Namespace) -> TextSpec:
        # The classifier's defaults: lowercase words, markup stripped, whitespace collapsed.
        return TextSpec(
            lowercase=True if args.lowercase is None else args.lowercase,
            strip_html=True if args.strip_html is None else args.strip_html,
            whitespace=args.whitespace or "collapse",
            tokenizer=args.tokenizer or "word",
            reserved_tokens=names.RESERVED_TOKENS,
        )

    def check_rows_options(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"require_label": True, "check_label": True}

    def split(self, record: dict[str, Any], args: argparse.Namespace):
        yield transforms.assign_split(record, args.validation_fraction, args.test_fraction)

    def features(self, record: dict[str, Any]) -> dict[str, Any]:
        return {**super().features(record), names.FEATURE_LABEL: record["label"]}

    def dataset_row(self, record: dict[str, Any]) -> dict[str, Any]:
        label = record["label"]
        return {**super().dataset_row(record), "label": None if label == names.UNLABELED else self.labels[label]}

    def dataset_figures(self, splits: dict[str, Any]) -> dict[str, Any]:
        train_labels = splits[names.SPLIT_TRAIN]["labels"]
        labelled = sum(v for k, v in train_labels.items() if k != "unlabeled")
        positive = train_labels.get(self.labels[1], 0) / labelled if labelled else None
        return {**super().dataset_figures(splits), "train_positive_share": positive}

    # ------------------------------------------------------------------ bulk scoring
    score_outputs = ("probability", "label_id", "num_tokens", "num_oov")

    def scored_schema(self, passthrough: list[str]):
        return arrow.scored_schema(passthrough)

    def scored_row(self, inference: dict[str, Any]) -> dict[str, Any] | tuple[str, str]:
        if inference["num_tokens"] == 0:
            return reasons.EMPTY_AFTER_CLEANING, "no tokens after cleaning"
        label_id = int(inference["label_id"])
        return {
            "probability": float(inference["probability"]),
            "predicted_label": self.labels[label_id],
            "predicted_label_id": label_id,
            "num_tokens": int(inference["num_tokens"]),
            "num_oov": int(inference["num_oov"]),
        }

    def scored_row_features(self, row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in ("id", "probability", "predicted_label")}

    def scored_group(self, row: dict[str, Any]) -> str | None:
        return row["predicted_label"]


TASK = Classification()
