"""Evaluation report (numbers and page) on synthetic predictions, and the TF-IDF baseline on the IMDB slice."""

import json

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from lstm_model import baseline, classification_report, evaluate
from schemas import names

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def calibrated_toy(per_bin: int = 20):
    """Every prediction at a bin centre, with exactly that share of positives: perfectly calibrated."""
    labels, probabilities = [], []
    for center in np.arange(0.05, 1.0, 0.1):
        positives = round(center * per_bin)
        labels += [1] * positives + [0] * (per_bin - positives)
        probabilities += [center] * per_bin
    return np.array(labels), np.array(probabilities)


def test_ece_is_zero_when_perfectly_calibrated():
    labels, probabilities = calibrated_toy()
    calibrated = evaluate.calibration(labels, probabilities)
    assert calibrated["ece"] == pytest.approx(0.0, abs=1e-12)
    assert [b["count"] for b in calibrated["bins"]] == [20] * 10
    assert [b["positive_share"] for b in calibrated["bins"]] == pytest.approx(np.arange(0.05, 1.0, 0.1))


def test_ece_of_an_overconfident_model():
    # Always 0.9 sure of pos, right half the time: one bin, gap 0.4.
    labels = np.array([0, 1] * 50)
    calibrated = evaluate.calibration(labels, np.full(100, 0.9))
    assert calibrated["ece"] == pytest.approx(0.4)
    assert calibrated["bins"][9]["count"] == 100 and calibrated["bins"][0]["count"] == 0


def test_calibration_bins_match_sklearn():
    rng = np.random.default_rng(0)
    probabilities = rng.uniform(size=2000)
    labels = (rng.uniform(size=2000) < probabilities**2).astype(int)
    calibrated = evaluate.calibration(labels, probabilities)
    share, mean = calibration_curve(labels, probabilities, n_bins=10, strategy="uniform")
    filled = [b for b in calibrated["bins"] if b["count"]]
    assert [b["positive_share"] for b in filled] == pytest.approx(share)
    assert [b["mean_probability"] for b in filled] == pytest.approx(mean)
    counts = np.array([b["count"] for b in filled])
    assert calibrated["ece"] == pytest.approx(float(np.sum(counts / counts.sum() * np.abs(share - mean))))


def test_accuracy_by_length_buckets():
    labels = np.array([1, 1, 0, 0, 1])
    probabilities = np.array([0.9, 0.2, 0.1, 0.8, 0.7])  # right, wrong, right, wrong, right
    lengths = np.array([5, 150, 199, 450, 5000])
    buckets = evaluate.accuracy_by_length(labels, probabilities, lengths)
    assert [b["bucket"] for b in buckets] == ["0-99", "100-199", "200-399", "400-799", ">=800"]
    assert [b["count"] for b in buckets] == [1, 2, 0, 1, 1]
    assert [b["accuracy"] for b in buckets] == [1.0, 0.5, None, 0.0, 1.0]


def test_confident_errors_are_the_most_confident_wrong_predictions():
    ids = ["a", "b", "c", "d"]
    errors = evaluate.confident_errors(
        ids, np.array([1, 0, 1, 0]), np.array([0.4, 0.99, 0.02, 0.1]), np.array([3, 4, 5, 6])
    )
    assert [e["id"] for e in errors] == ["b", "c", "a"]
    assert errors[0]["predicted_label"] == "pos" and errors[0]["confidence"] == pytest.approx(0.99)


def test_write_report_writes_page_plots_and_numbers(tmp_path):
    labels, probabilities = calibrated_toy()
    n = len(labels)
    ids = [f"test/x/{i}" for i in range(n)]
    lengths = np.arange(n) * 7
    texts = {record_id: f"text of {record_id} < & >" for record_id in ids}
    history = {"loss": [0.7, 0.5], "val_loss": [0.65, 0.55], "accuracy": [0.5, 0.8], "val_accuracy": [0.55, 0.75]}
    baseline_metrics = {
        "model": "tfidf",
        "test": evaluate.evaluation_summary(labels, np.clip(probabilities + 0.05, 0, 1), lengths),
    }
    blessing = {"blessed": False, "reason": "test accuracy 0.5 does not beat baseline"}
    out = classification_report.write_report(
        tmp_path / "report",
        labels,
        probabilities,
        lengths,
        ids,
        texts,
        history,
        baseline_metrics,
        baseline_predictions=(labels, np.clip(probabilities + 0.05, 0, 1)),
        blessing=blessing,
        best_epoch=2,
        max_tokens=400,
    )
    files = {
        "index.html",
        "training_curves.png",
        "roc.png",
        "pr.png",
        "confusion_matrix.png",
        "reliability.png",
        "accuracy_by_length.png",
    }
    assert {p.name for p in (tmp_path / "report").iterdir()} == files
    for name in files - {"index.html"}:
        assert (tmp_path / "report" / name).read_bytes()[:8] == PNG_MAGIC
    page = (tmp_path / "report" / "index.html").read_text()
    assert "NOT BLESSED" in page and "rebuilt from the ids" in page
    assert "&lt; &amp; &gt;" in page  # error texts are escaped
    summary = out["test"]
    assert summary["ece"] == pytest.approx(0.0, abs=1e-12)
    assert summary["examples"] == n and 0.5 < summary["roc_auc"] <= 1.0
    assert summary["average_precision"] == pytest.approx(summary["pr_curve"]["average_precision"])
    assert sum(b["count"] for b in summary["by_length"]) == n
    assert len(out["confident_errors"]) == evaluate.CONFIDENT_ERRORS
    json.dumps(summary)  # metrics.json-serialisable


def test_baseline_on_the_same_splits(mini_dataset, tmp_path):
    dataset_dir, manifest = mini_dataset
    metrics = baseline.run(["--dataset_dir", str(dataset_dir), "--output_dir", str(tmp_path)])
    assert json.loads((tmp_path / baseline.BASELINE_METRICS_FILE).read_text()) == metrics
    assert metrics["dataset_fingerprint"] == manifest["dataset_fingerprint"]
    assert metrics["train_examples"] == manifest["splits"]["train"]["records"]
    test = metrics["test"]
    assert test["examples"] == manifest["splits"]["test"]["records"]
    assert metrics["validation"]["examples"] == manifest["splits"]["validation"]["records"]
    # Bag of words on 456 reviews: well above chance, the bar the LSTM has to clear.
    assert test["accuracy"] > 0.7 and test["roc_auc"] > 0.8
    assert 0.0 <= test["ece"] <= 1.0 and len(test["calibration"]["bins"]) == 10
    assert metrics["params"]["C"] in metrics["params"]["c_grid"]


def test_baseline_reads_the_ids_ingest_wrote(mini_dataset):
    dataset_dir, manifest = mini_dataset
    split = baseline.read_split(str(dataset_dir), names.SPLIT_TEST)
    assert len(split.ids) == len(set(split.ids)) == manifest["splits"]["test"]["records"]
    assert [len(ids) for ids in split.token_ids] == split.lengths.tolist()
    assert split.as_documents()[0].split(" ") == [str(i) for i in split.token_ids[0].tolist()]
    assert set(split.labels.tolist()) == {0, 1}


def test_fewer_labels_use_the_same_training_records_in_lstm_and_baseline(mini_dataset):
    from lstm_model import data
    from lstm_model.config import TrainConfig

    dataset_dir = str(mini_dataset[0])
    subset = data.training_subset_ids(dataset_dir, 100, seed=7)
    assert len(subset) == len(set(subset)) == 100
    assert data.training_subset_ids(dataset_dir, 100, seed=7) == subset  # no RNG: the same on every call
    assert data.training_subset_ids(dataset_dir, 100, seed=8) != subset
    assert data.training_subset_ids(dataset_dir, 0, seed=7) is None
    # The LSTM's training input holds exactly these records (once per epoch)...
    config = TrainConfig(max_train_examples=100, seed=7, batch_size=16, max_tokens=32)
    count = sum(int(labels.shape[0]) for _, labels in data.training_dataset(dataset_dir, config))
    assert count == 100
    # ...and the baseline fits on them too.
    metrics = baseline.fit_baseline(dataset_dir, seed=7, max_train_examples=100).metrics
    assert metrics["train_examples"] == 100
