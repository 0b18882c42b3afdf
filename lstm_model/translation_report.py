"""The translation model's evaluation page: MODEL_DIR/report/index.html + PNG figures.

Sections: blessing; test BLEU / chrF of beam search and greedy decoding (with sentences per second)
against the IBM Model 1 word-by-word baseline; training curves (loss and validation BLEU against
minutes); BLEU by source length; attention heatmaps of a few test sentences; the best and worst
test translations by sentence BLEU.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from lstm_model import html_report
from schemas import names

REPORT_HTML = "index.html"
CURVES_PNG = "training_curves.png"
LENGTH_PNG = "bleu_by_length.png"
LENGTH_BUCKETS = ((1, 9), (10, 14), (15, 19), (20, 29), (30, None))
EXAMPLES = 8


def plot_curves(metrics: dict[str, Any], path: Path) -> None:
    curve = metrics["curve"]
    minutes = [e["minutes"] for e in curve]
    figure = html_report.figure(10.0, 3.8)
    loss_axis, bleu_axis = figure.subplots(1, 2)
    loss_axis.plot(minutes, [e["loss"] for e in curve], "o-", color="#888", label="train (dropout on)")
    loss_axis.plot(minutes, [e["val_loss"] for e in curve], "o-", color=html_report.MODEL_COLOR, label="validation")
    loss_axis.set(xlabel="training minutes", ylabel="cross-entropy (nats per target token)")
    bleu_axis.plot(minutes, [e["val_bleu"] for e in curve], "o-", color=html_report.MODEL_COLOR, label="LSTM (greedy)")
    baseline = metrics["baseline"][names.SPLIT_TEST]["bleu"]
    bleu_axis.axhline(baseline, color=html_report.BASELINE_COLOR, linestyle="--", label=metrics["baseline"]["model"])
    bleu_axis.set(xlabel="training minutes", ylabel="validation BLEU")
    for axis in (loss_axis, bleu_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("Training: loss and validation BLEU (baseline line: its test BLEU)")
    figure.savefig(path)


def length_buckets(translations: list[dict]) -> list[dict[str, Any]]:
    """Corpus BLEU of beam, greedy and baseline outputs per source-length bucket (tokens)."""
    from lstm_model import bleu

    rows = []
    for low, high in LENGTH_BUCKETS:
        members = [
            t for t in translations if t["source_tokens"] >= low and (high is None or t["source_tokens"] <= high)
        ]
        if not members:
            continue
        references = [t["reference"] for t in members]
        rows.append(
            {
                "bucket": f"{low}-{high}" if high else f"{low}+",
                "sentences": len(members),
                **{
                    key: bleu.corpus_scores([t[key] for t in members], references)["bleu"]
                    for key in ("beam", "greedy", "baseline")
                },
            }
        )
    return rows


def plot_length_buckets(rows: list[dict], path: Path) -> None:
    import numpy as np

    figure = html_report.figure(7.0, 3.8)
    axis = figure.subplots()
    positions = np.arange(len(rows))
    for offset, key, color in (
        (-0.27, "beam", html_report.MODEL_COLOR),
        (0.0, "greedy", "#6fa0d8"),
        (0.27, "baseline", html_report.BASELINE_COLOR),
    ):
        axis.bar(positions + offset, [r[key] for r in rows], width=0.27, color=color, label=key)
    axis.set_xticks(positions, [f"{r['bucket']}\n({r['sentences']})" for r in rows])
    axis.set(xlabel="source tokens (sentences)", ylabel="test BLEU")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3, axis="y")
    figure.savefig(path)


def plot_attention(example: dict[str, Any], path: Path) -> None:
    import numpy as np

    weights = np.asarray(example["weights"])
    source, target = example["source_pieces"], example["target_pieces"]
    figure = html_report.figure(max(3.0, 0.42 * len(source) + 1.5), max(2.5, 0.36 * len(target) + 1.2))
    axis = figure.subplots()
    axis.imshow(weights, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    axis.set_xticks(range(len(source)), source, rotation=60, ha="right", fontsize=8)
    axis.set_yticks(range(len(target)), target, fontsize=8)
    axis.set(xlabel="source", ylabel="output")
    figure.savefig(path)


def write_report(
    model_path: Path,
    metrics: dict[str, Any],
    info: dict[str, Any],
    translations: list[dict],
    attention_examples: list[dict],
    blessing: dict | None,
) -> Path:
    report_dir = model_path / names.MODEL_REPORT_DIR
    report_dir.mkdir(parents=True, exist_ok=True)
    test, baseline = metrics[names.SPLIT_TEST], metrics["baseline"]
    if metrics["curve"]:
        plot_curves(metrics, report_dir / CURVES_PNG)
    figures = html_report.table(
        ["system", "test BLEU", "test chrF", "sentences/s", "gain over baseline (BLEU)"],
        [
            (
                f"LSTM + {metrics['attention']} attention, beam {test['beam']['beam_width']}",
                test["beam"]["bleu"],
                test["beam"]["chrf"],
                test["beam"]["sentences_per_second"],
                round(test["beam"]["bleu"] - baseline[names.SPLIT_TEST]["bleu"], 2),
            ),
            (
                "LSTM, greedy",
                test["greedy"]["bleu"],
                test["greedy"]["chrf"],
                test["greedy"]["sentences_per_second"],
                round(test["greedy"]["bleu"] - baseline[names.SPLIT_TEST]["bleu"], 2),
            ),
            (baseline["model"], baseline[names.SPLIT_TEST]["bleu"], baseline[names.SPLIT_TEST]["chrf"], None, 0.0),
        ],
    )
    signature = (
        f"<p class='note'>sacreBLEU signatures: BLEU <code>{html.escape(test['bleu_signature'])}</code>, chrF "
        f"<code>{html.escape(test['chrf_signature'])}</code>; {test['sentences']} test sentences, detokenized output "
        "against the cleaned references. Test loss (teacher forcing): "
        f"{test['loss']} nats per token. Sentences per second: the exported SavedModel on this machine's CPU, "
        "batches of 64, raw text in and out.</p>"
    )
    training = html_report.table(
        ["epochs", "best epoch (validation BLEU)", "stopped by", "minutes", "steps", "parameters", "validation BLEU"],
        [
            (
                metrics["epochs_run"],
                metrics["best_epoch"],
                metrics["stopped_by"],
                round(metrics["train_seconds"] / 60, 1),
                metrics["steps"],
                metrics["parameters"],
                metrics[names.SPLIT_VALIDATION]["bleu"],
            )
        ],
    )
    if metrics["curve"]:
        training += f"<img src='{CURVES_PNG}' alt='training curves'>"
    buckets = length_buckets(translations)
    length_html = ""
    if buckets:
        plot_length_buckets(buckets, report_dir / LENGTH_PNG)
        length_html = (
            html_report.table(
                ["source tokens", "sentences", "beam", "greedy", "baseline"],
                [(r["bucket"], r["sentences"], r["beam"], r["greedy"], r["baseline"]) for r in buckets],
            )
            + f"<img src='{LENGTH_PNG}' alt='BLEU by source length'>"
        )
    images = []
    for index, example in enumerate(attention_examples):
        name = f"attention_{index + 1}.png"
        plot_attention(example, report_dir / name)
        images.append(
            f"<div><img src='{name}' alt='attention {index + 1}'><p class='note'>"
            f"{html.escape(example['source'])}<br><b>{html.escape(example['translation'])}</b></p></div>"
        )
    attention_html = (
        "<p class='note'>Greedy decoding through the exported <code>attention</code> signature: row t is where the "
        "decoder looked in the source to emit output token t.</p><div class='grid'>" + "".join(images) + "</div>"
    )
    ranked = sorted(translations, key=lambda t: t["sentence_bleu"])

    def example_rows(items):
        return [(t["sentence_bleu"], t["source"], t["reference"], t["beam"], t["greedy"], t["baseline"]) for t in items]

    header = ["sentence BLEU", "source", "reference", "beam", "greedy", "baseline"]
    examples_html = (
        "<h3>Best</h3>"
        + html_report.table(header, example_rows(ranked[::-1][:EXAMPLES]))
        + "<h3>Worst</h3>"
        + html_report.table(header, example_rows(ranked[:EXAMPLES]))
    )
    sections = [
        ("", html_report.blessing_section(blessing)),
        ("Test BLEU against the word-by-word baseline", figures + signature),
        ("Training", training),
        ("BLEU by source length", length_html),
        ("Attention", attention_html),
        ("Examples (test, by smoothed sentence BLEU of the beam output)", examples_html),
    ]
    subtitle = {
        "model": info["model_version"],
        "languages": f"{info.get('source_language')} -> {info.get('target_language')}",
        "tokenizer": info["preprocessing"]["tokenizer"],
        "vocabularies": f"{info['source_vocabulary_size']} / {info['target_vocabulary_size']}",
        "dataset": info["dataset_fingerprint"][:12],
    }
    return html_report.write_page(report_dir / REPORT_HTML, "Translation model evaluation", sections, subtitle)
