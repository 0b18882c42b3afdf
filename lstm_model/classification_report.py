"""The classifier's evaluation page: plots and HTML for test predictions (presentation only).

The numbers come from `lstm_model.evaluate`; the task (`lstm_model.tasks.classification`)
runs the baseline and blessing and calls `write_report` after training, or for an existing
model through `python -m lstm_model.report --model_dir M`.

MODEL_DIR/report/ then holds index.html and PNGs (matplotlib, Agg backend):

  training_curves.png     loss, accuracy and AUC per epoch, train and validation
  roc.png, pr.png         ROC and precision-recall curves on test, the baseline's dashed
  confusion_matrix.png    counts and row shares at the 0.5 threshold
  reliability.png         reliability diagram with the expected calibration error (ECE)
  accuracy_by_length.png  test accuracy per text-length bucket, model vs baseline

plus a table of the most confident errors with their text. The same numbers go
to MODEL_DIR/metrics.json (`test.ece`, `test.calibration`, `test.by_length`,
`test.roc_curve`, `test.pr_curve`, `baseline`, `deltas`, `blessing`,
`confident_errors`), and the blessing decision to MODEL_DIR/blessing.json
(see `lstm_model.bless`).

Calibration convention (that of `sklearn.calibration.calibration_curve`): the
predicted probability of `pos` is cut into equal-width bins; in each bin the mean
predicted probability is compared with the observed share of `pos`, and
ECE = sum over bins of (bin count / n) * |mean predicted - observed share|.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstm_model import html_report
from lstm_model.evaluate import confident_errors, evaluation_summary

REPORT_HTML = "index.html"
MODEL_COLOR, BASELINE_COLOR = html_report.MODEL_COLOR, html_report.BASELINE_COLOR


# ---------------------------------------------------------------------------------------------- plots
_figure = html_report.figure


def plot_training_curves(
    history: Mapping[str, Sequence[float]],
    path: Path,
    best_epoch: int | None = None,
    loss_label: str = "binary cross-entropy (nats)",
    title: str = "Training and validation curves (validation loss picks the best epoch)",
) -> bool:
    """Train and validation curves per epoch for every metric logged on both. False if no history."""
    order = {"loss": 0, "accuracy": 1, "auc": 2}
    names_ = [key for key in history if not key.startswith("val_") and f"val_{key}" in history]
    names_.sort(key=lambda key: (order.get(key, len(order)), key))
    if not names_:
        return False
    labels = {"loss": loss_label, "accuracy": "accuracy", "auc": "ROC-AUC"}
    figure = _figure(max(6.0, 4.2 * len(names_)), 3.8)
    axes = figure.subplots(1, len(names_), squeeze=False)[0]
    for axis, key in zip(axes, names_, strict=True):
        epochs = np.arange(1, len(history[key]) + 1)
        axis.plot(epochs, history[key], "o-", color=MODEL_COLOR, label="train")
        axis.plot(epochs, history[f"val_{key}"], "s--", color=BASELINE_COLOR, label="validation")
        if best_epoch:
            axis.axvline(best_epoch, color="#888", linestyle=":", label=f"best epoch ({best_epoch})")
        axis.set(title=labels.get(key, key), xlabel="epoch", ylabel=labels.get(key, key))
        axis.set_xticks(epochs)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title)
    figure.savefig(path)
    return True


def plot_roc(labels, probabilities, path: Path, baseline: tuple | None = None, baseline_name: str = "baseline") -> None:
    from sklearn import metrics as sk_metrics

    figure = _figure(5.2, 5.0)
    axis = figure.subplots()
    curves = [("LSTM", labels, probabilities, MODEL_COLOR, "-")]
    if baseline is not None:
        curves.append((baseline_name, *baseline, BASELINE_COLOR, "--"))
    for name, y, p, color, style in curves:
        fpr, tpr, _ = sk_metrics.roc_curve(y, p)
        axis.plot(fpr, tpr, style, color=color, label=f"{name} (AUC {sk_metrics.auc(fpr, tpr):.3f})")
    axis.plot([0, 1], [0, 1], ":", color="#999", label="chance")
    axis.set(
        title="ROC curve, test split",
        xlabel="false positive rate (neg predicted pos)",
        ylabel="true positive rate (recall of pos)",
    )
    axis.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right", fontsize=9)
    figure.savefig(path)


def plot_pr(labels, probabilities, path: Path, baseline: tuple | None = None, baseline_name: str = "baseline") -> None:
    from sklearn import metrics as sk_metrics

    figure = _figure(5.2, 5.0)
    axis = figure.subplots()
    curves = [("LSTM", labels, probabilities, MODEL_COLOR, "-")]
    if baseline is not None:
        curves.append((baseline_name, *baseline, BASELINE_COLOR, "--"))
    for name, y, p, color, style in curves:
        precision, recall, _ = sk_metrics.precision_recall_curve(y, p)
        ap = sk_metrics.average_precision_score(y, p)
        axis.step(recall, precision, where="post", linestyle=style, color=color, label=f"{name} (AP {ap:.3f})")
    prevalence = float(np.mean(labels))
    axis.axhline(prevalence, linestyle=":", color="#999", label=f"chance (share of pos {prevalence:.2f})")
    axis.set(
        title="Precision-recall curve, test split (positive = pos)", xlabel="recall of pos", ylabel="precision of pos"
    )
    axis.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left", fontsize=9)
    figure.savefig(path)


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], path: Path, threshold: float = 0.5) -> None:
    from schemas import names

    matrix = np.asarray(matrix)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure = _figure(4.6, 4.0)
    axis = figure.subplots()
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if shares[row, column] > 0.6 else "black"
        axis.text(column, row, f"{count}\n({shares[row, column]:.1%} of row)", ha="center", va="center", color=color)
    ticks = range(len(names.LABELS))
    axis.set(xticks=ticks, yticks=ticks, xticklabels=names.LABELS, yticklabels=names.LABELS)
    axis.set(
        title=f"Confusion matrix, test split\n(P(pos) >= {threshold:g} predicts pos)",
        xlabel="predicted label",
        ylabel="true label",
    )
    figure.colorbar(image, ax=axis, label="share of the true label's texts")
    figure.savefig(path)


def plot_reliability(calibrated: dict, path: Path) -> None:
    bins = calibrated["bins"]
    centers = np.array([(b["lower"] + b["upper"]) / 2 for b in bins])
    width = bins[0]["upper"] - bins[0]["lower"]
    filled = [b for b in bins if b["count"]]
    figure = _figure(5.4, 6.0)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], ":", color="#999", label="perfect calibration")
    top.bar(
        [(b["lower"] + b["upper"]) / 2 for b in filled],
        [b["positive_share"] for b in filled],
        width=width * 0.9,
        color=MODEL_COLOR,
        alpha=0.75,
        edgecolor="black",
        label="observed share of pos",
    )
    top.plot(
        [b["mean_probability"] for b in filled],
        [b["positive_share"] for b in filled],
        "o",
        color=BASELINE_COLOR,
        label="bin mean predicted P(pos)",
    )
    top.set(ylabel="observed share of pos", ylim=(0, 1), xlim=(0, 1))
    top.set_title(f"Reliability diagram, test split\nexpected calibration error (ECE) {calibrated['ece']:.4f}")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    counts = [b["count"] for b in bins]
    bottom.bar(centers, counts, width=width * 0.9, color="#888", edgecolor="black")
    for center, count in zip(centers, counts, strict=True):
        if count:
            bottom.text(center, count, str(count), ha="center", va="bottom", fontsize=7)
    bottom.set_ylim(0, max(counts) * 1.3 + 1)
    bottom.set(xlabel="predicted probability of pos (bin)", ylabel="texts")
    bottom.grid(alpha=0.3)
    figure.savefig(path)


def plot_accuracy_by_length(
    model_buckets: list[dict], path: Path, baseline_buckets: list[dict] | None = None, max_tokens: int | None = None
) -> None:
    names_ = [b["bucket"] for b in model_buckets]
    x = np.arange(len(names_))
    width = 0.38 if baseline_buckets else 0.6
    figure = _figure(6.4, 4.4)
    axis = figure.subplots()
    series = [("LSTM", model_buckets, MODEL_COLOR, 0.0 if not baseline_buckets else -width / 2)]
    if baseline_buckets:
        series.append(("baseline", baseline_buckets, BASELINE_COLOR, width / 2))
    for name, buckets, color, offset in series:
        values = [b["accuracy"] if b["accuracy"] is not None else 0.0 for b in buckets]
        bars = axis.bar(x + offset, values, width=width, color=color, label=name)
        for bar, bucket in zip(bars, buckets, strict=True):
            if bucket["accuracy"] is not None:
                axis.text(
                    bar.get_x() + bar.get_width() / 2,
                    bar.get_height() + 0.01,
                    f"{bucket['accuracy']:.2f}",
                    ha="center",
                    fontsize=8,
                )
    axis.set_xticks(x, [f"{name}\n(n={b['count']})" for name, b in zip(names_, model_buckets, strict=True)])
    title = "Test accuracy by text length"
    if max_tokens:
        title += f"\n(the LSTM reads at most {max_tokens} tokens; the baseline whole texts)"
    axis.set(
        title=title,
        xlabel="text length (tokens before truncation) and texts per bucket",
        ylabel="accuracy",
        ylim=(0, 1.18),
    )
    axis.grid(axis="y", alpha=0.3)
    axis.legend(loc="upper left", ncol=2, fontsize=9)
    figure.savefig(path)


# ---------------------------------------------------------------------------------------------- page
def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def _signed(value) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


_CSS = html_report.CSS


def render_html(
    summary: dict,
    baseline_metrics: dict | None,
    blessing: dict | None,
    errors: list[dict],
    texts: Mapping[str, str] | None,
    images: dict[str, str],
    title: str,
    model_info: Mapping[str, Any] | None = None,
) -> str:
    esc = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{_CSS}</style></head><body>"
    ]
    parts.append(f"<h1>{esc(title)}</h1>")
    if model_info:
        described = ", ".join(f"{k} <code>{esc(str(v))}</code>" for k, v in model_info.items() if v is not None)
        parts.append(f"<p class='note'>{described}</p>")
    if blessing is not None:
        status = "<span class='pass'>BLESSED</span>" if blessing["blessed"] else "<span class='fail'>NOT BLESSED</span>"
        parts.append(f"<h2>Blessing: {status}</h2><p>{esc(blessing['reason'])}</p>")
        parts.append(
            "<p class='note'>Decision at report time; the current one is in blessing.json (python -m lstm_model.bless).</p>"
        )

    baseline = (baseline_metrics or {}).get("test")
    parts.append("<h2>Test metrics</h2><table><tr><th>metric</th><th>LSTM</th>")
    if baseline:
        parts.append("<th>baseline</th><th>LSTM - baseline</th>")
    parts.append("</tr>")
    rows = [
        ("accuracy", "accuracy"),
        ("F1 (pos)", "f1"),
        ("precision (pos)", "precision"),
        ("recall (pos)", "recall"),
        ("ROC-AUC", "roc_auc"),
        ("average precision", "average_precision"),
        ("log loss (nats, lower is better)", "log_loss"),
        ("ECE (lower is better)", "ece"),
    ]
    for label, key in rows:
        parts.append(f"<tr><td>{label}</td><td>{_fmt(summary.get(key))}</td>")
        if baseline:
            difference = (
                summary[key] - baseline[key] if summary.get(key) is not None and baseline.get(key) is not None else None
            )
            parts.append(f"<td>{_fmt(baseline.get(key))}</td><td>{_signed(difference)}</td>")
        parts.append("</tr>")
    parts.append(
        f"<tr><td>test texts</td><td>{summary['examples']}</td>{'<td>' + str(baseline['examples']) + '</td><td></td>' if baseline else ''}</tr>"
    )
    parts.append("</table>")
    if baseline_metrics:
        parts.append(
            f"<p class='note'>Baseline: {esc(baseline_metrics.get('description', baseline_metrics.get('model', '')))}.</p>"
        )
    else:
        parts.append("<p class='note'>No baseline was computed.</p>")

    captions = {
        "training_curves": "Training and validation curves",
        "roc": "ROC curve",
        "pr": "Precision-recall curve",
        "confusion_matrix": "Confusion matrix",
        "reliability": "Reliability diagram",
        "accuracy_by_length": "Accuracy by text length",
    }
    parts.append("<h2>Plots</h2><div class='grid'>")
    for key, caption in captions.items():
        if key in images:
            parts.append(
                f"<figure><img src='{esc(images[key])}' alt='{esc(caption)}'><figcaption>{esc(caption)}</figcaption></figure>"
            )
    parts.append("</div>")

    parts.append(
        "<h2>Calibration bins</h2><table><tr><th>P(pos) bin</th><th>texts</th><th>mean P(pos)</th><th>share of pos</th><th>gap</th></tr>"
    )
    for b in summary["calibration"]["bins"]:
        parts.append(
            f"<tr><td>[{b['lower']:.1f}, {b['upper']:.1f}{']' if b['upper'] >= 1 else ')'}</td><td>{b['count']}</td>"
            f"<td>{_fmt(b['mean_probability'])}</td><td>{_fmt(b['positive_share'])}</td><td>{_fmt(b['gap'])}</td></tr>"
        )
    parts.append(f"</table><p class='note'>{esc(summary['calibration']['definition'])}.</p>")

    if summary.get("by_length"):
        base_buckets = {b["bucket"]: b for b in (baseline or {}).get("by_length", [])}
        parts.append(
            "<h2>Accuracy by text length</h2><table><tr><th>tokens</th><th>texts</th><th>LSTM</th><th>baseline</th></tr>"
        )
        for b in summary["by_length"]:
            other = base_buckets.get(b["bucket"], {})
            parts.append(
                f"<tr><td>{b['bucket']}</td><td>{b['count']}</td><td>{_fmt(b['accuracy'])}</td><td>{_fmt(other.get('accuracy'))}</td></tr>"
            )
        parts.append("</table>")

    parts.append(f"<h2>Most confident errors ({len(errors)})</h2>")
    parts.append(
        "<p class='note'>The dataset stores token ids, not the raw text: the text below is rebuilt from the ids through the "
        "model's vocab.tsv, so it is cleaned and tokenized (lowercased if ingest lowercased, punctuation split off, "
        "words outside the vocabulary shown as [UNK]). Find the raw text by its id in the input.</p>"
    )
    parts.append(
        "<table><tr><th>id</th><th>true</th><th>P(pos)</th><th>tokens</th><th>text (rebuilt from token ids)</th></tr>"
    )
    for error in errors:
        text = texts.get(error["id"]) if texts is not None else None
        if text is None:
            cell = "<span class='note'>(not available)</span>"
        else:
            words = text.split(" ")
            head = " ".join(words[:60])
            cell = (
                esc(head)
                if len(words) <= 60
                else f"<details><summary>{esc(head)} …</summary>{esc(' '.join(words[60:]))}</details>"
            )
        parts.append(
            f"<tr><td><code>{esc(error['id'])}</code></td><td>{esc(error['label'])}</td><td>{error['probability']:.4f}</td>"
            f"<td>{error['length']}</td><td class='text'>{cell}</td></tr>"
        )
    parts.append("</table><p class='note'>Numbers for machines: metrics.json next to this directory.</p></body></html>")
    return "\n".join(parts)


def write_report(
    report_dir: str | Path,
    labels: np.ndarray,
    probabilities: np.ndarray,
    lengths: np.ndarray,
    ids: Sequence[str],
    texts: Mapping[str, str] | None,
    history: Mapping[str, Sequence[float]] | None,
    baseline_metrics: dict | None = None,
    baseline_predictions: tuple[np.ndarray, np.ndarray] | None = None,
    blessing: dict | None = None,
    best_epoch: int | None = None,
    max_tokens: int | None = None,
    title: str = "Evaluation report",
    model_info: Mapping[str, Any] | None = None,
    summary: dict | None = None,
) -> dict[str, Any]:
    """Writes report_dir/index.html and its PNGs for test predictions; returns the numbers.

    Args:
      report_dir: directory to write (created).
      labels, probabilities, lengths, ids: test split, one entry per text (label index, P(pos),
        tokens before truncation, record id).
      texts: id -> readable text, looked up only for the most confident errors (None: no text).
      history: Keras `History.history` (loss, val_loss, ...); None or {} skips the curves.
      baseline_metrics: the baseline's metrics dict (`lstm_model.baseline`), with its "test" summary.
      baseline_predictions: (labels, probabilities) of the baseline on test, for dashed curves.
      blessing: the decision of `lstm_model.bless.decide`, shown at the top.
      summary: precomputed `evaluation_summary` of these predictions (computed if None).

    Returns:
      {"test": evaluation summary, "confident_errors": [...], "images": {name: file}}.
    """
    report_path = Path(report_dir)
    report_path.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    summary = summary or evaluation_summary(labels, probabilities, lengths)
    errors = confident_errors(list(ids), labels, probabilities, lengths)
    baseline_test = (baseline_metrics or {}).get("test") or {}
    baseline_name = "TF-IDF + logistic regression" if baseline_metrics else "baseline"
    images = {}
    if history and plot_training_curves(history, report_path / "training_curves.png", best_epoch):
        images["training_curves"] = "training_curves.png"
    if summary.get("roc_curve"):
        plot_roc(labels, probabilities, report_path / "roc.png", baseline_predictions, baseline_name)
        plot_pr(labels, probabilities, report_path / "pr.png", baseline_predictions, baseline_name)
        images.update(roc="roc.png", pr="pr.png")
    plot_confusion_matrix(summary["confusion_matrix"], report_path / "confusion_matrix.png", summary["threshold"])
    plot_reliability(summary["calibration"], report_path / "reliability.png")
    images.update(confusion_matrix="confusion_matrix.png", reliability="reliability.png")
    if summary.get("by_length"):
        plot_accuracy_by_length(
            summary["by_length"], report_path / "accuracy_by_length.png", baseline_test.get("by_length"), max_tokens
        )
        images["accuracy_by_length"] = "accuracy_by_length.png"
    page = render_html(summary, baseline_metrics, blessing, errors, texts, images, title, model_info)
    (report_path / REPORT_HTML).write_text(page, encoding="utf-8")
    return {"test": summary, "confident_errors": errors, "images": images}


class VocabularyTexts(Mapping):
    """id -> text rebuilt from token ids through a vocabulary (tokens joined by spaces), on demand."""

    def __init__(
        self, ids: Sequence[str], token_ids: Sequence[np.ndarray], vocabulary: Sequence[str], max_tokens: int = 1000
    ):
        self._rows = {record_id: row for record_id, row in zip(ids, token_ids, strict=True)}
        self._vocabulary = vocabulary
        self._max_tokens = max_tokens

    def __getitem__(self, record_id: str) -> str:
        row = self._rows[record_id]
        words = [
            self._vocabulary[i] if 0 <= i < len(self._vocabulary) else "[?]" for i in row[: self._max_tokens].tolist()
        ]
        if len(row) > self._max_tokens:
            words.append(f"[... {len(row) - self._max_tokens} more tokens]")
        return " ".join(words)

    def __iter__(self):
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)
