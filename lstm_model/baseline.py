"""Non-neural baseline: TF-IDF + logistic regression on the ingested token ids.

    python -m lstm_model.baseline --dataset_dir data/processed/imdb_mini --output_dir models/imdb_mini_baseline

Shows what the LSTM buys. It reads the same dataset directory as training and
uses the same splits: fitted on `train`, regularisation strength chosen on
`validation`, evaluated on `test` with the same evaluation as the LSTM
(`lstm_model.evaluate.evaluation_summary`). Its "words" are the token ids that
ingest wrote, so cleaning, tokenization and the vocabulary are the project's one
definition (`textprep.preprocessing`); out-of-vocabulary words are the single
token `[UNK]`. Unlike the LSTM (first `max_tokens` tokens), it reads whole texts.

Writes OUTPUT_DIR/baseline_metrics.json (validation and test metrics, parameters).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger("lstm_model")
BASELINE_METRICS_FILE = "baseline_metrics.json"
BASELINE_NAME = "tfidf_logistic_regression"
DEFAULT_C_GRID = (1.0, 4.0, 16.0)  # inverse L2 strength, chosen by validation accuracy


@dataclasses.dataclass
class SplitData:
    """The records of one split as ingest wrote them (token ids not truncated)."""

    ids: list[str]  # record ids
    labels: np.ndarray  # [n] int64, index into schemas.names.LABELS
    token_ids: list[np.ndarray]  # n arrays of int64 vocabulary ids
    lengths: np.ndarray  # [n] int64, tokens before any truncation

    def as_documents(self) -> list[str]:
        """Token ids joined by spaces: '12 7 431', one string per record, for a text vectorizer."""
        return [" ".join(map(str, ids.tolist())) for ids in self.token_ids]


@dataclasses.dataclass
class BaselineResult:
    """Metrics of the baseline plus its test predictions (for curves and per-length accuracy)."""

    metrics: dict
    test: SplitData
    test_probabilities: np.ndarray  # [n] probability of LABELS[1], in `test` order


def read_split(dataset_dir: str, split: str, batch_size: int = 1024) -> SplitData:
    """All records of a split in file order, parsed with the project's TFRecord spec."""
    import tensorflow as tf

    from lstm_model import data
    from schemas import names
    from schemas.tfrecord import feature_spec

    dataset = tf.data.TFRecordDataset(data.split_files(dataset_dir, split), compression_type="GZIP").batch(batch_size)
    ids, labels, token_ids, lengths = [], [], [], []
    for serialized in dataset:
        batch = tf.io.parse_example(serialized, feature_spec())
        ragged = batch[names.FEATURE_TOKEN_IDS]
        values, splits = ragged.flat_values.numpy(), ragged.row_splits.numpy()
        token_ids.extend(values[start:end] for start, end in zip(splits[:-1], splits[1:], strict=True))
        labels.append(batch[names.FEATURE_LABEL].numpy())
        lengths.append(batch[names.FEATURE_LENGTH].numpy())
        ids.extend(value.decode("utf-8") for value in batch[names.FEATURE_ID].numpy())
    return SplitData(ids, np.concatenate(labels).astype(np.int64), token_ids, np.concatenate(lengths).astype(np.int64))


def fit_baseline(
    dataset_dir: str,
    ngram_max: int = 2,
    min_df: int = 2,
    c_grid: tuple[float, ...] = DEFAULT_C_GRID,
    seed: int = 42,
    max_train_examples: int = 0,
) -> BaselineResult:
    """Fit TF-IDF + logistic regression on train, pick C on validation, evaluate on test.

    Args:
      dataset_dir: output directory of the ingest pipeline.
      ngram_max: longest n-gram of token ids used as a feature (1 = bag of words).
      min_df: drop n-grams present in fewer training documents than this.
      c_grid: candidate inverse regularisation strengths; the best validation accuracy wins
        (ties: the smallest C, the most regularised).
      seed: for the solver, and the training subset.
      max_train_examples: fit on only these many training records, the same ones the LSTM
        uses with the same `max_train_examples` and seed (`data.training_subset_ids`); 0 = all.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from lstm_model import data
    from lstm_model.evaluate import evaluation_summary
    from schemas import names

    started = time.monotonic()
    manifest = data.read_manifest(dataset_dir)
    splits = {
        split: read_split(dataset_dir, split) for split in (names.SPLIT_TRAIN, names.SPLIT_VALIDATION, names.SPLIT_TEST)
    }
    train, validation, test = (splits[s] for s in (names.SPLIT_TRAIN, names.SPLIT_VALIDATION, names.SPLIT_TEST))
    subset = data.training_subset_ids(dataset_dir, max_train_examples, seed)
    if subset is not None:
        keep = set(subset)
        rows = [i for i, record_id in enumerate(train.ids) if record_id in keep]
        train = SplitData(
            [train.ids[i] for i in rows], train.labels[rows], [train.token_ids[i] for i in rows], train.lengths[rows]
        )
    # Tokens are the vocabulary ids ingest wrote; no lowercasing or token pattern of sklearn's own.
    vectorizer = TfidfVectorizer(
        token_pattern=r"\S+",
        lowercase=False,
        ngram_range=(1, ngram_max),
        min_df=min_df,
        sublinear_tf=True,
        dtype=np.float32,
    )
    x_train = vectorizer.fit_transform(train.as_documents())
    x_validation = vectorizer.transform(validation.as_documents())
    x_test = vectorizer.transform(test.as_documents())

    search = []
    best = None
    for c in sorted(c_grid):
        classifier = LogisticRegression(C=c, solver="liblinear", max_iter=1000, random_state=seed).fit(
            x_train, train.labels
        )
        accuracy = float((classifier.predict(x_validation) == validation.labels).mean())
        search.append({"C": c, "validation_accuracy": accuracy})
        if best is None or accuracy > best[0]:
            best = (accuracy, c, classifier)
    _, best_c, classifier = best
    validation_probabilities = classifier.predict_proba(x_validation)[:, 1]
    test_probabilities = classifier.predict_proba(x_test)[:, 1]
    metrics = {
        "model": BASELINE_NAME,
        "description": (
            f"TF-IDF (sublinear tf, l2-normalised) of token-id 1..{ngram_max}-grams seen in >= {min_df} training texts, "
            f"logistic regression (L2, C={best_c:g} chosen on validation accuracy); whole texts, no truncation"
        ),
        "params": {
            "ngram_max": ngram_max,
            "min_df": min_df,
            "C": best_c,
            "c_grid": list(c_grid),
            "features": int(x_train.shape[1]),
        },
        "c_search": search,
        "dataset_fingerprint": manifest.get("dataset_fingerprint"),
        "train_examples": len(train.ids),
        names.SPLIT_VALIDATION: evaluation_summary(validation.labels, validation_probabilities, validation.lengths),
        names.SPLIT_TEST: evaluation_summary(test.labels, test_probabilities, test.lengths),
        "fit_seconds": round(time.monotonic() - started, 1),
    }
    LOGGER.info(
        "baseline %s: C=%g, %d features, test accuracy %.4f (%.1f s)",
        BASELINE_NAME,
        best_c,
        x_train.shape[1],
        metrics[names.SPLIT_TEST]["accuracy"],
        metrics["fit_seconds"],
    )
    return BaselineResult(metrics, test, test_probabilities)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lstm_model.baseline",
        description="TF-IDF + logistic regression baseline on an ingested dataset (same splits and evaluation as the LSTM).",
    )
    parser.add_argument("--dataset_dir", required=True, help="Output directory of the ingest pipeline.")
    parser.add_argument("--output_dir", required=True, help=f"Directory for {BASELINE_METRICS_FILE} (local).")
    parser.add_argument(
        "--ngram_max", type=int, default=2, help="Longest token n-gram used as a feature (default: %(default)s)."
    )
    parser.add_argument(
        "--min_df", type=int, default=2, help="Minimum training documents per n-gram (default: %(default)s)."
    )
    parser.add_argument(
        "--c_grid",
        default=",".join(f"{c:g}" for c in DEFAULT_C_GRID),
        help="Comma-separated C values tried on validation (default: %(default)s).",
    )
    parser.add_argument(
        "--max_train_examples",
        type=int,
        default=0,
        help="Fit on this many training records, the LSTM's subset for the same value and --seed (default: all).",
    )
    parser.add_argument(
        "--seed", type=int, default=42, help="Seed of the subset and the solver (default: %(default)s)."
    )
    return parser


def run(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)  # before the TensorFlow imports: --help stays fast

    from lstm_model import data
    from schemas.cli import UserError, setup_logging

    setup_logging()
    logging.getLogger("lstm_model").setLevel(logging.INFO)
    try:
        c_grid = tuple(float(c) for c in args.c_grid.split(",") if c.strip())
    except ValueError:
        raise UserError(f"--c_grid must be comma-separated numbers, got {args.c_grid!r}") from None
    if not c_grid or min(c_grid) <= 0 or args.ngram_max < 1 or args.min_df < 1 or args.max_train_examples < 0:
        raise UserError("--c_grid values must be > 0; --ngram_max and --min_df >= 1; --max_train_examples >= 0")
    try:
        result = fit_baseline(
            args.dataset_dir,
            ngram_max=args.ngram_max,
            min_df=args.min_df,
            c_grid=c_grid,
            seed=args.seed,
            max_train_examples=args.max_train_examples,
        )
    except data.DatasetError as error:
        raise UserError(str(error)) from None
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / BASELINE_METRICS_FILE).write_text(json.dumps(result.metrics, indent=2) + "\n")
    test = result.metrics["test"]
    print(
        f"baseline {BASELINE_NAME}: test accuracy {test['accuracy']:.4f}, F1 {test['f1']:.4f}, "
        f"ROC-AUC {test['roc_auc'] or float('nan'):.4f}, ECE {test['ece']:.4f} on {test['examples']} texts "
        f"-> {output / BASELINE_METRICS_FILE}",
        flush=True,
    )
    return result.metrics


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from schemas.cli import main_with_user_errors

    sys.exit(main_with_user_errors(run))


if __name__ == "__main__":
    main()
