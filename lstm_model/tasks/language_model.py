"""Language-model task: train a causal stacked LSTM on a language_model dataset, evaluate, export, report.

    python -m lstm_model.train --dataset_dir data/processed/shakespeare --model_dir models/shakespeare \\
        --max_minutes 30

(`lstm_model.train` hands a language_model dataset to this module.) Training draws
windows at random offsets of the training stream (`lstm_model.lm_data`); every
`steps_per_epoch` steps it measures the exact validation loss, writes TensorBoard
scalars, checkpoints the weights, the optimizer state and the loop's position
(`checkpoints/`), and applies early stopping and learning-rate reduction. A run that
was killed continues from its last checkpoint with `--resume` and ends where an
uninterrupted run would have. `--max_minutes` bounds the wall-clock time.

MODEL_DIR afterwards holds:
  config.json          the resolved LanguageModelConfig
  vocab.tsv            the dataset's vocabulary (travels with the model)
  model_info.json      model version, task, preprocessing (TextSpec), dataset fingerprint, versions
  metrics.json         validation (and test) nats per token, perplexity, bits per char; the n-gram
                       baseline's; the loss-vs-minutes curve; throughput; the deciding metric
  history.json         per-epoch train and validation loss, minutes and tokens seen
  samples.json         generated samples at fixed seeds and temperatures
  report/index.html    evaluation report (curves, baseline, samples), training_curves.png
  blessing.json        blessed or not, and why (lower validation loss than the baseline, and the previous model)
  model.weights.h5     the weights (the architecture is config.json: nothing is unpickled to load it)
  export/              SavedModel, raw strings in: generate, log_likelihood, preprocess signatures
  checkpoints/         last and best weights, optimizer state, loop state (for --resume)
  logs/                TensorBoard logs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger("lstm_model")
WEIGHTS_FILE = "model.weights.h5"
SAMPLES_FILE = "samples.json"
SAMPLE_TEMPERATURES = (0.5, 0.8, 1.0)
SAMPLE_SEEDS = (1, 2)
SAMPLE_TOKENS = 300  # tokens per report sample


def build_parser() -> argparse.ArgumentParser:
    from lstm_model.bless import add_blessing_flags
    from lstm_model.config import LanguageModelConfig, add_config_flags

    parser = argparse.ArgumentParser(
        prog="python -m lstm_model.train",
        description="Train, evaluate and export a causal LSTM language model from a language_model dataset "
        "(python -m pipelines.ingest --task language_model).",
    )
    parser.add_argument("--task", default=None, help="The dataset's task (read from its manifest).")
    parser.add_argument("--dataset_dir", required=True, help="Output directory of the ingest pipeline.")
    parser.add_argument("--model_dir", required=True, help="Directory to write the model to (local).")
    parser.add_argument("--config", default=None, help="JSON file of LanguageModelConfig values; flags override it.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing model in --model_dir.")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="Continue a run that stopped (killed, or out of --max_minutes) from MODEL_DIR/checkpoints.",
    )
    parser.add_argument(
        "--baseline_order",
        type=int,
        default=0,
        help="Order of the Kneser-Ney n-gram baseline (default 0: 7 for characters, 3 for words and subwords).",
    )
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1], help="Progress lines (default: 1).")
    add_config_flags(parser, LanguageModelConfig)
    add_blessing_flags(parser)
    return parser


def split_figures(total_nats: float, tokens: int, chars: int | None) -> dict[str, Any]:
    """Cross-entropy figures of a split from its summed negative log-likelihood (nats)."""
    nats = total_nats / max(tokens, 1)
    return {
        "nats_per_token": round(nats, 5),
        "perplexity": round(math.exp(min(nats, 50.0)), 3),
        "bits_per_char": round(total_nats / math.log(2.0) / chars, 5) if chars else None,
        "tokens": int(tokens),
    }


class _Evaluator:
    """Exact summed NLL (nats) and token count of a token stream, the LSTM state carried through it.

    The stream is cut into `rows` contiguous pieces scored side by side (a batch); each piece is read
    from its start to its end in one pass, so every token is predicted from all the text before it
    within its piece (a few thousand tokens for tiny Shakespeare's validation split), the way a
    recurrent model reads a long text. Every token but the stream's first is predicted exactly once.
    """

    def __init__(self, lm, rows: int = 64):
        import tensorflow as tf

        self.rows = rows
        self._log_probs = tf.function(
            lm.token_log_probs,
            input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)],
        )

    def __call__(self, stream) -> tuple[float, int]:
        import numpy as np

        targets = len(stream) - 1
        if targets < 1:
            return 0.0, 0
        rows = min(self.rows, targets)
        length = -(-targets // rows)  # ceil: targets per row
        padded = np.zeros(rows * length + 1, np.int32)
        padded[: len(stream)] = stream
        ids = padded[np.arange(rows)[:, None] * length + np.arange(length + 1)[None, :]]  # rows overlap by one token
        lengths = np.clip(len(stream) - np.arange(rows) * length, 1, length + 1).astype(np.int32)
        log_probs = self._log_probs(ids, lengths).numpy().astype("float64")
        return float(-log_probs.sum()), int(lengths.sum() - rows)


def train(dataset_dir: str, model_dir: str, config, args: argparse.Namespace) -> dict:
    """Train, evaluate, export, report and bless a language model; returns metrics.json's content."""
    import keras
    import numpy as np
    import tensorflow as tf

    from lstm_model import data, export, lm_data, ngram, training
    from lstm_model.causal_lm import CausalLM, compile_language_model
    from schemas import names
    from schemas.cli import UserError
    from textprep.preprocessing import TextSpec

    try:
        manifest = data.read_manifest(dataset_dir)
        vocab_path = f"{dataset_dir.rstrip('/')}/{names.VOCAB_FILE}"
        vocabulary = data.read_vocabulary(vocab_path)
        if manifest.get("task") != names.TASK_LANGUAGE_MODEL:
            raise data.DatasetError(
                f"{dataset_dir} is a {manifest.get('task', 'classification')} dataset; ingest with "
                "--task language_model to train a language model"
            )
        train_stream = lm_data.token_stream(dataset_dir, names.SPLIT_TRAIN)
        validation_stream = lm_data.token_stream(dataset_dir, names.SPLIT_VALIDATION)
        has_test = manifest["splits"][names.SPLIT_TEST]["records"] > 0
        test_stream = lm_data.token_stream(dataset_dir, names.SPLIT_TEST) if has_test else None
        lm_data.random_windows(train_stream, 1, config.sequence_length, np.random.default_rng(0))
    except data.DatasetError as error:
        raise UserError(str(error)) from None
    spec = TextSpec.from_dict(manifest["preprocessing"])
    model_path = Path(model_dir)
    resuming = training.prepare_model_dir(model_path, config, args.overwrite, args.resume)
    if args.previous_model_dir:  # fail before training, not after
        from lstm_model.bless import load_previous

        load_previous(args.previous_model_dir, model_dir, manifest.get("dataset_fingerprint"))
    model_path.mkdir(parents=True, exist_ok=True)
    (model_path / names.MODEL_CONFIG_FILE).write_text(config.to_json() + "\n")
    shutil.copyfile(vocab_path, model_path / names.VOCAB_FILE)
    checkpoints = model_path / "checkpoints"

    keras.utils.set_random_seed(config.seed)
    lm = CausalLM(config, len(vocabulary))
    model = compile_language_model(lm)
    model.summary(print_fn=LOGGER.info)
    evaluate = _Evaluator(lm)
    # What each validation measures: the whole split, or its first validation_tokens tokens.
    evaluated = validation_stream[: config.validation_tokens + 1] if config.validation_tokens else validation_stream
    chars = {split: manifest["splits"][split].get("chars") for split in names.SPLITS}
    if config.validation_tokens and chars[names.SPLIT_VALIDATION]:
        # Only the first validation_tokens are measured: their share of the characters (tokens incl. [EOS]).
        share = min(1.0, config.validation_tokens / max(len(validation_stream) - 1, 1))
        chars[names.SPLIT_VALIDATION] = chars[names.SPLIT_VALIDATION] * share
    tokens_per_step = config.batch_size * config.sequence_length
    state = {"epoch": 0, "step": 0, "seconds": 0.0, "history": [], "best": None, "since_best": 0}
    state["learning_rate"] = config.learning_rate
    if resuming:
        state = training.restore_checkpoint(checkpoints, model)
        LOGGER.info("resuming after epoch %d (%.1f minutes of training so far)", state["epoch"], state["seconds"] / 60)
    model.optimizer.learning_rate.assign(state["learning_rate"])
    writer = tf.summary.create_file_writer(str(model_path / "logs"))
    LOGGER.info(
        "training on %s: %d train tokens, %d validation tokens, vocabulary %d (%s), %s softmax; devices %s",
        dataset_dir,
        len(train_stream),
        len(validation_stream),
        len(vocabulary),
        spec.tokenizer,
        f"sampled ({lm.head.num_sampled})" if lm.head.num_sampled else "full",
        [d.device_type for d in tf.config.list_logical_devices()],
    )
    budget = config.max_minutes * 60.0
    started = time.monotonic() - state["seconds"]
    stopped_by = "epochs"
    while state["epoch"] < config.epochs:
        epoch = state["epoch"]
        # Offsets depend on (seed, epoch) only: a resumed run draws what an uninterrupted one would have.
        rng = np.random.default_rng([config.seed, epoch])
        losses, last_log, logged_steps = [], time.monotonic(), 0
        for step in range(config.steps_per_epoch):
            windows = lm_data.random_windows(train_stream, config.batch_size, config.sequence_length, rng)
            scheduled = config.scheduled_learning_rate(state["step"], (time.monotonic() - started) / 60)
            if scheduled is not None:
                state["learning_rate"] = scheduled
                model.optimizer.learning_rate.assign(scheduled)
            losses.append(float(model.train_on_batch(windows)))
            state["step"] += 1
            now = time.monotonic()
            if args.verbose and now - last_log >= 30:
                LOGGER.info(
                    "epoch %d step %d/%d: loss %.4f, %.0f tokens/s, %.1f min",
                    epoch + 1,
                    step + 1,
                    config.steps_per_epoch,
                    np.mean(losses[-50:]),
                    tokens_per_step * (len(losses) - logged_steps) / (now - last_log),
                    (now - started) / 60,
                )
                last_log, logged_steps = now, len(losses)
            if budget and now - started >= budget:
                stopped_by = "max_minutes"
                break
        total, tokens = evaluate(evaluated)
        validation = split_figures(total, tokens, chars[names.SPLIT_VALIDATION])
        seconds = time.monotonic() - started
        entry = {
            "epoch": epoch + 1,
            "steps": state["step"],
            "minutes": round(seconds / 60, 3),
            "tokens_seen": state["step"] * tokens_per_step,
            "loss": round(float(np.mean(losses)), 5) if losses else None,
            "val_loss": validation["nats_per_token"],
            "val_bits_per_char": validation["bits_per_char"],
            "learning_rate": state["learning_rate"],
        }
        state["history"].append(entry)
        with writer.as_default(step=state["step"]):
            tf.summary.scalar("loss/train", entry["loss"] or 0.0)
            tf.summary.scalar("loss/validation_nats_per_token", entry["val_loss"])
            tf.summary.scalar("learning_rate", state["learning_rate"])
        improved = state["best"] is None or entry["val_loss"] < state["best"]
        state["best"] = entry["val_loss"] if improved else state["best"]
        state["since_best"] = 0 if improved else state["since_best"] + 1
        if not improved and config.reduce_lr_factor < 1.0 and config.lr_schedule == "plateau":
            state["learning_rate"] *= config.reduce_lr_factor
            model.optimizer.learning_rate.assign(state["learning_rate"])
        state["epoch"] = epoch + 1
        state["seconds"] = seconds
        training.save_checkpoint(checkpoints, model, state, best=improved)
        print(
            f"epoch {entry['epoch']}: train loss {entry['loss']}, validation {entry['val_loss']:.4f} nats/token"
            + (f" ({entry['val_bits_per_char']:.4f} bits/char)" if entry["val_bits_per_char"] else "")
            + f", {entry['minutes']:.1f} min, {entry['tokens_seen']} tokens seen{' *' if improved else ''}",
            flush=True,
        )
        if stopped_by == "max_minutes":
            break
        if config.early_stopping_patience and state["since_best"] >= config.early_stopping_patience:
            stopped_by = "early_stopping"
            break
        if budget and time.monotonic() - started >= budget:
            stopped_by = "max_minutes"
            break
    train_seconds = state["seconds"]
    model.load_weights(str(checkpoints / "best.weights.h5"))
    model.save_weights(str(model_path / WEIGHTS_FILE))

    results = {names.SPLIT_VALIDATION: split_figures(*evaluate(evaluated), chars[names.SPLIT_VALIDATION])}
    if test_stream is not None:
        # Bounded like validation (--validation_tokens), so a large test split does not dominate the run's time.
        measured = test_stream[: config.validation_tokens + 1] if config.validation_tokens else test_stream
        test_chars = chars[names.SPLIT_TEST]
        if config.validation_tokens and test_chars:
            test_chars = test_chars * min(1.0, config.validation_tokens / max(len(test_stream) - 1, 1))
        results[names.SPLIT_TEST] = split_figures(*evaluate(measured), test_chars)

    # The baseline: a Kneser-Ney n-gram model on the same training text, scored on the same validation tokens.
    order = args.baseline_order or (ngram.DEFAULT_CHARACTER_ORDER if spec.tokenizer == "char" else 3)
    baseline_fit = ngram.fit_and_evaluate(_documents(train_stream), _documents(evaluated), len(vocabulary), order)
    baseline = {
        "model": f"Kneser-Ney {order}-gram",
        names.SPLIT_VALIDATION: split_figures(
            baseline_fit["nats_per_token"] * baseline_fit["tokens"],
            baseline_fit["tokens"],
            chars[names.SPLIT_VALIDATION],
        ),
        "fit_seconds": baseline_fit["fit_seconds"],
    }

    from lstm_model.lm_export import export_language_model

    export_dir = model_path / names.MODEL_EXPORT_DIR
    export_language_model(lm, vocabulary, spec, str(export_dir))
    history = state["history"]
    version = export.model_version("lstm-lm-", config.to_json(), manifest["dataset_fingerprint"], model.get_weights())
    metrics = {
        **results,
        "baseline": baseline,
        "deciding": {"metric": "nats_per_token", "split": names.SPLIT_VALIDATION, "lower_is_better": True},
        "curve": [{k: e[k] for k in ("minutes", "tokens_seen", "val_loss", "val_bits_per_char")} for e in history],
        "epochs_run": len(history),
        "best_epoch": 1 + min(range(len(history)), key=lambda i: history[i]["val_loss"]),
        "stopped_by": stopped_by,
        "train_seconds": round(train_seconds, 1),
        "tokens_seen": history[-1]["tokens_seen"],
        "tokens_per_second": round(history[-1]["tokens_seen"] / max(train_seconds, 1e-9)),
        "parameters": int(model.count_params()),
    }
    manifest_bytes = Path(dataset_dir, names.MANIFEST_FILE).read_bytes()
    info = {
        "model_version": version,
        "task": names.TASK_LANGUAGE_MODEL,
        "labels": [],
        "preprocessing": spec.to_dict(),
        "vocabulary_size": len(vocabulary),
        "sequence_length": config.sequence_length,
        "dataset_dir": os.path.abspath(dataset_dir),
        "dataset_fingerprint": manifest["dataset_fingerprint"],
        "dataset_manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "dataset_token_length": {split: manifest["splits"][split]["token_length"] for split in names.SPLITS},
        "dataset_records": {split: manifest["splits"][split]["records"] for split in names.SPLITS},
        "dataset_oov_rate": {split: manifest["splits"][split]["oov_rate"] for split in names.SPLITS},
        "dataset_quarantine_rate": manifest["counts"]["quarantined"] / max(manifest["counts"]["records_in"], 1),
        "validation_nats_per_token": results[names.SPLIT_VALIDATION]["nats_per_token"],
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "train_seconds": round(train_seconds, 1),
    }
    (model_path / names.MODEL_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    (model_path / names.MODEL_HISTORY_FILE).write_text(json.dumps(history, indent=2) + "\n")
    samples = generate_samples(str(export_dir), validation_stream, vocabulary, spec)
    (model_path / SAMPLES_FILE).write_text(json.dumps(samples, indent=2, ensure_ascii=False) + "\n")

    from lstm_model import bless, lm_report

    previous = (
        bless.load_previous(args.previous_model_dir, model_dir, manifest.get("dataset_fingerprint"))
        if args.previous_model_dir
        else None
    )
    decision = bless.decide(
        metrics,
        baseline,
        previous,
        metric="nats_per_token",
        baseline_margin=args.bless_margin,
        previous_margin=args.previous_margin,
        split=names.SPLIT_VALIDATION,
    )
    decision["model_version"] = version
    bless.write_blessing(model_dir, decision)
    metrics["blessing"] = {key: decision[key] for key in ("blessed", "reason", "metric", "margins")}
    (model_path / names.MODEL_METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    lm_report.write_report(model_path, metrics, info, samples, decision)
    validation = results[names.SPLIT_VALIDATION]
    print(
        f"trained {version} in {train_seconds / 60:.1f} min ({len(history)} epochs, stopped by {stopped_by}): "
        f"validation {validation['nats_per_token']:.4f} nats/token"
        + (f", {validation['bits_per_char']:.4f} bits/char" if validation["bits_per_char"] else "")
        + f", perplexity {validation['perplexity']:.2f}; {baseline['model']} "
        f"{baseline[names.SPLIT_VALIDATION]['nats_per_token']:.4f}; "
        f"{'BLESSED' if decision['blessed'] else 'NOT BLESSED'} -> {model_dir}",
        flush=True,
    )
    return metrics


def _documents(stream):
    """A token stream -> its documents (runs between [EOS] ids), for the n-gram baseline."""
    import numpy as np

    from schemas import names

    ends = np.flatnonzero(stream == names.EOS_ID)
    starts = np.concatenate([[0], ends[:-1] + 1]) if len(ends) else np.array([0])
    pieces = [stream[s:e].tolist() for s, e in zip(starts, ends, strict=False)] if len(ends) else [stream.tolist()]
    return [[token for token in piece if token != 0] for piece in pieces if len(piece)]


def generate_samples(export_dir: str, validation_stream, vocabulary: list[str], spec) -> list[dict[str, Any]]:
    """Samples from the exported model at fixed seeds and temperatures, prompted with the validation text's start."""
    import tensorflow as tf

    from lstm_model.export import load_exported
    from schemas import names

    signature = load_exported(export_dir).signatures[names.GENERATE_SIGNATURE]
    head = [vocabulary[i] for i in validation_stream[:200] if i >= len(spec.reserved_tokens)]
    separator = "" if spec.tokenizer == "char" else " "
    words = head[:40] if spec.tokenizer == "char" else head[:8]
    prompt = separator.join(words).replace(" ##", "") if spec.tokenizer == "wordpiece" else separator.join(words)
    samples = []
    for temperature in SAMPLE_TEMPERATURES:
        for seed in SAMPLE_SEEDS:
            out = signature(
                prompt=tf.constant([prompt]),
                seed=tf.constant([seed], tf.int64),
                max_new_tokens=tf.constant(SAMPLE_TOKENS, tf.int32),
                temperature=tf.constant(temperature, tf.float32),
                top_k=tf.constant(0, tf.int32),
                top_p=tf.constant(1.0, tf.float32),
                stop=tf.constant(""),
            )
            samples.append(
                {
                    "prompt": prompt,
                    "temperature": temperature,
                    "seed": seed,
                    "text": out["text"].numpy()[0].decode("utf-8", errors="replace"),
                    "num_tokens": int(out["num_tokens"].numpy()[0]),
                    "log_prob": float(out["log_prob"].numpy()[0]),
                }
            )
    return samples


def run(argv: list[str] | None = None) -> dict:
    from lstm_model.config import LanguageModelConfig, resolve_config
    from schemas.cli import UserError, setup_logging

    args = build_parser().parse_args(argv)
    setup_logging()
    logging.getLogger("lstm_model").setLevel(logging.INFO)
    try:
        config = resolve_config(args.config, args, LanguageModelConfig)
    except (ValueError, OSError) as error:
        raise UserError(f"bad config: {error}") from None
    return train(args.dataset_dir, args.model_dir, config, args)


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from schemas.cli import main_with_user_errors

    sys.exit(main_with_user_errors(run))


if __name__ == "__main__":
    main()
