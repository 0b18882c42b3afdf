"""The language model's evaluation page: MODEL_DIR/report/index.html + training_curves.png.

Sections: blessing; validation (and test) cross-entropy in nats per token, perplexity and
bits per character against the Kneser-Ney n-gram baseline on the same tokens; the loss
curve against minutes and tokens seen; samples at fixed seeds for a few temperatures.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from lstm_model import html_report
from schemas import names

REPORT_HTML = "index.html"
CURVES_PNG = "training_curves.png"


def plot_curves(metrics: dict[str, Any], path: Path) -> None:
    """Validation nats per token against minutes and tokens seen, with the baseline as a line."""
    curve = metrics["curve"]
    baseline = metrics["baseline"][names.SPLIT_VALIDATION]["nats_per_token"]
    figure = html_report.figure(10.0, 3.8)
    axes = figure.subplots(1, 2)
    for axis, key, label in ((axes[0], "minutes", "training minutes"), (axes[1], "tokens_seen", "tokens seen")):
        axis.plot(
            [e[key] for e in curve], [e["val_loss"] for e in curve], "o-", color=html_report.MODEL_COLOR, label="LSTM"
        )
        axis.axhline(baseline, color=html_report.BASELINE_COLOR, linestyle="--", label=metrics["baseline"]["model"])
        axis.set(xlabel=label, ylabel="validation nats per token")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("Validation cross-entropy (exact softmax) as training goes on")
    figure.savefig(path)


def write_report(
    model_path: Path, metrics: dict[str, Any], info: dict[str, Any], samples: list[dict], blessing: dict | None
) -> Path:
    report_dir = model_path / names.MODEL_REPORT_DIR
    report_dir.mkdir(parents=True, exist_ok=True)
    plot_curves(metrics, report_dir / CURVES_PNG)
    baseline = metrics["baseline"]
    rows = []
    for split in (names.SPLIT_VALIDATION, names.SPLIT_TEST):
        if split not in metrics:
            continue
        lstm, reference = metrics[split], baseline.get(split)
        for key, label in (
            ("nats_per_token", "nats per token"),
            ("perplexity", "perplexity"),
            ("bits_per_char", "bits per character"),
        ):
            ref = None if reference is None else reference.get(key)
            gain = None if ref is None or lstm.get(key) is None else round(ref - lstm[key], 4)
            rows.append((split, label, lstm.get(key), ref, gain))
    figures = html_report.table(
        ["split", "measure (lower is better)", "LSTM", baseline["model"], "baseline - LSTM"], rows
    )
    training = html_report.table(
        ["epochs", "best epoch", "stopped by", "minutes", "tokens seen", "tokens/s", "parameters"],
        [
            (
                metrics["epochs_run"],
                metrics["best_epoch"],
                metrics["stopped_by"],
                round(metrics["train_seconds"] / 60, 1),
                metrics["tokens_seen"],
                metrics["tokens_per_second"],
                metrics["parameters"],
            )
        ],
    )
    sample_rows = [
        (
            s["temperature"],
            s["seed"],
            s["num_tokens"],
            f"<pre>{html.escape(s['prompt'])}<b>{html.escape(s['text'])}</b></pre>",
        )
        for s in samples
    ]
    sections = [
        ("", html_report.blessing_section(blessing)),
        ("Cross-entropy against the n-gram baseline", figures),
        ("Training", training + f"<img src='{CURVES_PNG}' alt='training curves'>"),
        (
            "Samples (prompt, then the generated text in bold)",
            "<p class='note'>Full softmax sampling (top_k 0, top_p 1) at fixed seeds; the same seed gives the same "
            "text.</p>" + html_report.table(["temperature", "seed", "tokens", "text"], sample_rows),
        ),
    ]
    subtitle = {
        "model": info["model_version"],
        "tokenizer": info["preprocessing"]["tokenizer"],
        "vocabulary": info["vocabulary_size"],
        "dataset": info["dataset_fingerprint"][:12],
    }
    return html_report.write_page(report_dir / REPORT_HTML, "Language model evaluation", sections, subtitle)
