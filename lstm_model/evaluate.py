"""Evaluation of a classifier on a split: predictions and the metrics JSON numbers (report and baseline alike)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from sklearn import metrics as sk_metrics

from lstm_model import data
from lstm_model.config import TrainConfig
from schemas import names

CALIBRATION_BINS = 10
# Bucket edges in tokens (before truncation): <100, 100-199, 200-399, 400-799, >=800.
LENGTH_EDGES = (100, 200, 400, 800)
CONFIDENT_ERRORS = 12  # errors listed on the page and in metrics.json
FPR_POINTS = (0.01, 0.05, 0.1)  # ROC summary: true positive rate at these false positive rates
RECALL_POINTS = (0.5, 0.8, 0.9)  # PR summary: best precision at at least these recalls


def predict_split(model: keras.Model, dataset_dir: str, split: str, config: TrainConfig):
    """(ids: list[str], labels: int array [n], probabilities: float array [n], lengths: int array [n])."""
    import tensorflow as tf

    # One compiled graph for every batch shape: eager LSTM steps would run op by op.
    predict = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec([None, None], tf.int32)])
    ids, labels, probabilities, lengths = [], [], [], []
    for token_ids, label, record_id in data.evaluation_dataset(dataset_dir, split, config, with_ids=True):
        probability = predict(token_ids).numpy().reshape(-1)
        probabilities.append(probability)
        labels.append(label.numpy().astype(np.int64))
        ids.extend(value.decode("utf-8") for value in record_id.numpy())
        lengths.append((token_ids.numpy() != 0).sum(axis=1))
    return ids, np.concatenate(labels), np.concatenate(probabilities), np.concatenate(lengths)


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, precision, recall, F1 (positive = LABELS[1]), ROC-AUC, log loss, confusion matrix."""
    if len(labels) == 0:
        raise ValueError("no examples to evaluate")
    predicted = (probabilities >= threshold).astype(np.int64)
    both_classes = len(np.unique(labels)) == 2
    return {
        "examples": int(len(labels)),
        "accuracy": float(sk_metrics.accuracy_score(labels, predicted)),
        "precision": float(sk_metrics.precision_score(labels, predicted, zero_division=0)),
        "recall": float(sk_metrics.recall_score(labels, predicted, zero_division=0)),
        "f1": float(sk_metrics.f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(sk_metrics.roc_auc_score(labels, probabilities)) if both_classes else None,
        "log_loss": float(sk_metrics.log_loss(labels, np.clip(probabilities, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "threshold": threshold,
        "confusion_matrix": sk_metrics.confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
    }


def calibration(labels: np.ndarray, probabilities: np.ndarray, n_bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Reliability bins and the expected / maximum calibration error of P(pos)."""
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Same binning as sklearn.calibration.calibration_curve(strategy="uniform").
    index = np.searchsorted(edges[1:-1], probabilities, side="right")
    bins, ece, mce = [], 0.0, 0.0
    for b in range(n_bins):
        in_bin = index == b
        count = int(in_bin.sum())
        entry = {"lower": round(float(edges[b]), 6), "upper": round(float(edges[b + 1]), 6), "count": count}
        if count:
            mean_probability = float(probabilities[in_bin].mean())
            positive_share = float(labels[in_bin].mean())
            gap = abs(mean_probability - positive_share)
            ece += count / len(labels) * gap
            mce = max(mce, gap)
            entry.update(mean_probability=mean_probability, positive_share=positive_share, gap=gap)
        else:
            entry.update(mean_probability=None, positive_share=None, gap=None)
        bins.append(entry)
    return {
        "definition": f"{n_bins} equal-width bins of P(pos); ECE = sum_b n_b/n * |mean P(pos) - share of pos|",
        "ece": float(ece),
        "max_calibration_error": float(mce),
        "bins": bins,
    }


def length_bucket_names(edges: Sequence[int] = LENGTH_EDGES) -> list[str]:
    bounds = [0, *edges]
    return [f"{lo}-{hi - 1}" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)] + [f">={bounds[-1]}"]


def accuracy_by_length(
    labels, probabilities, lengths, edges: Sequence[int] = LENGTH_EDGES, threshold: float = 0.5
) -> list[dict]:
    """Accuracy per token-length bucket: [{"bucket", "lower", "upper" (exclusive, None = open), "count", "accuracy"}]."""
    correct = (np.asarray(probabilities) >= threshold).astype(np.int64) == np.asarray(labels)
    bucket = np.searchsorted(np.asarray(edges), np.asarray(lengths), side="right")
    bounds = [0, *edges, None]
    out = []
    for b, name in enumerate(length_bucket_names(edges)):
        in_bucket = bucket == b
        count = int(in_bucket.sum())
        out.append(
            {
                "bucket": name,
                "lower": bounds[b],
                "upper": bounds[b + 1],
                "count": count,
                "accuracy": float(correct[in_bucket].mean()) if count else None,
            }
        )
    return out


def _curves(labels: np.ndarray, probabilities: np.ndarray) -> tuple[dict | None, dict | None]:
    """ROC and PR summaries (areas and a few operating points); None with a single class."""
    from sklearn import metrics as sk_metrics

    if len(np.unique(labels)) < 2:
        return None, None
    fpr, tpr, _ = sk_metrics.roc_curve(labels, probabilities)
    precision, recall, _ = sk_metrics.precision_recall_curve(labels, probabilities)
    roc = {
        "auc": float(sk_metrics.auc(fpr, tpr)),
        "tpr_at_fpr": {f"{p:g}": float(tpr[fpr <= p].max()) for p in FPR_POINTS},
    }
    pr = {
        "average_precision": float(sk_metrics.average_precision_score(labels, probabilities)),
        "prevalence": float(np.mean(labels)),
        "precision_at_recall": {f"{r:g}": float(precision[recall >= r].max()) for r in RECALL_POINTS},
    }
    return roc, pr


def evaluation_summary(
    labels: np.ndarray,
    probabilities: np.ndarray,
    lengths: np.ndarray | None = None,
    threshold: float = 0.5,
    n_bins: int = CALIBRATION_BINS,
    length_edges: Sequence[int] = LENGTH_EDGES,
) -> dict[str, Any]:
    """`evaluate.classification_metrics` plus average precision, ECE, calibration bins, ROC/PR summaries
    and accuracy per length bucket. The one evaluation of the LSTM and of the baseline."""

    labels = np.asarray(labels).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    summary = classification_metrics(labels, probabilities, threshold)
    roc, pr = _curves(labels, probabilities)
    calibrated = calibration(labels, probabilities, n_bins)
    summary.update(
        average_precision=pr["average_precision"] if pr else None,
        ece=calibrated["ece"],
        max_calibration_error=calibrated["max_calibration_error"],
        calibration=calibrated,
        roc_curve=roc,
        pr_curve=pr,
    )
    if lengths is not None:
        summary["by_length"] = accuracy_by_length(labels, probabilities, lengths, length_edges, threshold)
    return summary


def confident_errors(
    ids, labels, probabilities, lengths, k: int = CONFIDENT_ERRORS, threshold: float = 0.5
) -> list[dict]:
    """The k misclassified examples with the highest confidence in the wrong label."""

    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = (probabilities >= threshold).astype(np.int64)
    confidence = np.where(predicted == 1, probabilities, 1.0 - probabilities)
    wrong = [i for i in range(len(labels)) if predicted[i] != labels[i]]
    wrong.sort(key=lambda i: (-confidence[i], ids[i]))
    return [
        {
            "id": ids[i],
            "label": names.LABELS[int(labels[i])],
            "predicted_label": names.LABELS[int(predicted[i])],
            "probability": float(probabilities[i]),
            "confidence": float(confidence[i]),
            "length": int(lengths[i]),
        }
        for i in wrong[:k]
    ]


def deltas(model: dict, baseline: dict) -> dict[str, float | None]:
    """Model minus baseline for the headline numbers (negative log loss / ECE deltas are improvements)."""
    keys = ("accuracy", "f1", "roc_auc", "average_precision", "log_loss", "ece")
    return {
        key: (model[key] - baseline[key]) if model.get(key) is not None and baseline.get(key) is not None else None
        for key in keys
    }
