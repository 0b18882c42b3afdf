"""Evaluation of a classifier on a split: predictions and the metrics JSON numbers."""

from __future__ import annotations

import keras
import numpy as np
from sklearn import metrics as sk_metrics

from lstm_model import data
from lstm_model.config import TrainConfig


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
