"""Classification task: train the LSTM sentiment classifier on an ingested dataset, evaluate, export.

    python -m lstm_model.train --dataset_dir data/processed/imdb_mini \\
        --model_dir models/imdb_mini --epochs 2

(`lstm_model.train` hands a classification dataset to this module.)

MODEL_DIR afterwards holds:
  config.json          the resolved TrainConfig
  vocab.tsv            the dataset's vocabulary (travels with the model)
  model_info.json      model version, labels, preprocessing, dataset fingerprint
                       and manifest sha256, versions, wall time
  metrics.json         validation and test metrics (accuracy, precision, recall, F1, ROC-AUC; test also
                       ECE, calibration bins, accuracy by length), the baseline's and the deltas
  history.json         per-epoch loss/accuracy/AUC, train and validation
  report/index.html    evaluation report with PNG plots, vs the TF-IDF baseline (lstm_model.classification_report)
  blessing.json        blessed or not, and why (lstm_model.bless); scoring refuses unblessed models
  model.keras          the Keras model (token ids in)
  export/              SavedModel, raw strings in (see lstm_model.export)
  checkpoints/         best weights by validation loss
  logs/                TensorBoard logs (tensorboard --logdir MODEL_DIR/logs)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

LOGGER = logging.getLogger("lstm_model")


def build_parser() -> argparse.ArgumentParser:
    from lstm_model.bless import add_blessing_flags
    from lstm_model.config import add_config_flags

    parser = argparse.ArgumentParser(
        prog="python -m lstm_model.train",
        description="Train, evaluate and export an LSTM sentiment classifier from an ingested dataset.",
    )
    parser.add_argument(
        "--task",
        default=None,
        help="The dataset's task (read from its manifest); `--task language_model --help` shows that task's flags.",
    )
    parser.add_argument("--dataset_dir", required=True, help="Output directory of the ingest pipeline.")
    parser.add_argument("--model_dir", required=True, help="Directory to write the model to (local).")
    parser.add_argument("--config", default=None, help="JSON file of TrainConfig values; flags below override it.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing model in --model_dir.")
    parser.add_argument(
        "--verbose", type=int, default=2, choices=[0, 1, 2], help="Keras fit verbosity (default: %(default)s)."
    )
    add_config_flags(parser)
    add_blessing_flags(parser)
    return parser


class ProgressLogger:
    """Keras callback: a log line every `every_seconds` with steps and examples/s."""

    def __new__(cls, *args, **kwargs):
        import keras

        class _Progress(keras.callbacks.Callback):
            def __init__(self, batch_size: int, every_seconds: float = 30.0):
                super().__init__()
                self.batch_size = batch_size
                self.every = every_seconds

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch
                self.start = self.last = time.monotonic()

            def on_train_batch_end(self, batch, logs=None):
                now = time.monotonic()
                if now - self.last >= self.every:
                    rate = (batch + 1) * self.batch_size / (now - self.start)
                    LOGGER.info(
                        "epoch %d step %d: loss %.4f accuracy %.4f (%.0f examples/s)",
                        self.epoch + 1,
                        batch + 1,
                        logs.get("loss", float("nan")),
                        logs.get("accuracy", float("nan")),
                        rate,
                    )
                    self.last = now

        return _Progress(*args, **kwargs)


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def _check_pretrained(config, vocabulary: list[str]) -> None:
    """UserError unless config.pretrained_dir is a language model with this vocabulary and encoder shape."""
    from lstm_model import causal_lm
    from lstm_model import model_dir as model_info
    from lstm_model.language_model import check_compatible
    from lstm_model.pretrain import read_pretrained
    from schemas import names
    from schemas.cli import UserError

    lm_size = None  # a directory without vocab.tsv is refused below, as not a language model directory
    try:  # what the directory says about itself is checked before any of it is trusted (one line, not a traceback)
        info = model_info.read_model_info(config.pretrained_dir) or {}
        vocab_path = model_info.inside(config.pretrained_dir, names.VOCAB_FILE, config.pretrained_dir)
        if os.path.exists(vocab_path):
            with open(vocab_path, "rb") as handle:
                lm_size = sum(1 for line in handle.read().split(b"\n") if line)
    except (ValueError, OSError) as error:
        raise UserError(f"--pretrained_dir: {error}") from None
    if lm_size is not None and info.get("vocabulary_size", lm_size) != lm_size:
        raise UserError(
            f"--pretrained_dir {config.pretrained_dir}: vocab.tsv has {lm_size} tokens but model_info.json records "
            f"{info['vocabulary_size']}: the vocabulary does not belong to this model"
        )
    if causal_lm.is_model_dir(config.pretrained_dir):  # a causal LM of the language_model task (ULMFiT-style)
        try:
            lm_config, lm_vocabulary = _causal_config_and_vocabulary(config.pretrained_dir)
        except (ValueError, OSError) as error:
            raise UserError(f"--pretrained_dir {config.pretrained_dir}: {error}") from None
        if lm_vocabulary != vocabulary:
            raise UserError(
                f"--pretrained_dir {config.pretrained_dir} has another vocabulary than this dataset's; ingest the "
                f"labelled data with --vocabulary {config.pretrained_dir}"
            )
        differences = causal_lm.transfer_differences(lm_config, config)
        if differences:
            raise UserError(
                f"--pretrained_dir {config.pretrained_dir}: the classifier's encoder must match the language "
                "model's: " + "; ".join(differences)
            )
        return
    pretrain_config, pretrain_vocabulary = read_pretrained(config.pretrained_dir)
    if pretrain_vocabulary != vocabulary:
        raise UserError(
            f"--pretrained_dir {config.pretrained_dir} was trained with another vocabulary than this dataset's "
            "(pretrain on the same dataset directory)"
        )
    try:
        check_compatible(pretrain_config, config)
    except ValueError as error:
        raise UserError(f"--pretrained_dir {config.pretrained_dir}: {error}") from None


def _causal_config_and_vocabulary(model_dir: str):
    from lstm_model import data
    from lstm_model.config import LanguageModelConfig
    from schemas import names

    path = Path(model_dir)
    return LanguageModelConfig.from_json(path / names.MODEL_CONFIG_FILE), data.read_vocabulary(
        str(path / names.VOCAB_FILE)
    )


def _start_from_pretrained(model, config) -> dict:
    """Copies the pretrained encoder into `model`; returns what model_info.json records about it."""
    from lstm_model import causal_lm
    from lstm_model.language_model import transfer_encoder
    from lstm_model.pretrain import WEIGHTS_FILE, load_language_model
    from schemas import names

    if causal_lm.is_model_dir(config.pretrained_dir):
        lm, _, _ = causal_lm.load_model_dir(config.pretrained_dir)
        language_model, weights_file = lm.model, causal_lm.WEIGHTS_FILE
    else:
        language_model, _, _ = load_language_model(config.pretrained_dir)
        weights_file = WEIGHTS_FILE
    copied = transfer_encoder(language_model, model)
    info_path = Path(config.pretrained_dir) / names.MODEL_INFO_FILE
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    metrics_path = Path(config.pretrained_dir) / names.MODEL_METRICS_FILE
    lm_metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    LOGGER.info("encoder layers %s start from the language model in %s", copied, config.pretrained_dir)
    return {
        "pretrained_dir": os.path.abspath(config.pretrained_dir),
        "layers": copied,
        "dataset_fingerprint": info.get("dataset_fingerprint"),
        "splits": info.get("splits"),
        "validation_perplexity": _rounded(_last_perplexity(lm_metrics.get("validation"))),
        "weights_sha256": hashlib.sha256((Path(config.pretrained_dir) / weights_file).read_bytes()).hexdigest(),
    }


def _last_perplexity(validation) -> float | None:
    """Validation perplexity of a language model's metrics.json (a list per epoch, or the causal LM's final dict)."""
    if isinstance(validation, dict):
        return validation.get("perplexity")
    return (validation or [{}])[-1].get("perplexity")


def _fit(
    model, train_data, validation_data, config, checkpoint: Path, model_path: Path, verbose: int, pretrained: bool
):
    """Fits in phases; returns the merged per-epoch history {metric: [values]}.

    From scratch: one phase. From a pretrained encoder (gradual unfreezing, ULMFiT):
    `freeze_encoder_epochs` epochs train the classifier head on the frozen encoder, so
    the random head does not send large gradients into pretrained weights; then every
    layer trains, the encoder at learning_rate x `encoder_lr_multiplier`. The checkpoint
    keeps the best weights by validation loss across phases.
    """
    import keras

    from lstm_model.model import compile_classifier, encoder_layers

    phases = [(config.epochs, True)]
    if pretrained and config.freeze_encoder_epochs > 0:
        frozen_until = min(config.freeze_encoder_epochs, config.epochs)
        phases = [(frozen_until, False)] + ([(config.epochs, True)] if frozen_until < config.epochs else [])
    history: dict[str, list[float]] = {}
    epoch, best = 0, None
    for end, encoder_trainable in phases:
        for layer in encoder_layers(model):
            layer.trainable = encoder_trainable
        compile_classifier(model, config, config.encoder_lr_multiplier if pretrained else 1.0)
        if len(phases) > 1:
            LOGGER.info("epochs %d-%d: encoder %s", epoch + 1, end, "trainable" if encoder_trainable else "frozen")
        callbacks = []
        if config.ema_momentum > 0:
            # First in the list: the averaged weights are in the model while validation, early stopping and the
            # checkpoint look at it, and the raw weights are swapped back in to go on training.
            callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
        if config.reduce_lr_factor < 1.0:
            callbacks.append(
                keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=config.reduce_lr_factor, patience=0)
            )
        callbacks += [
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.early_stopping_patience, restore_best_weights=True
            ),
            keras.callbacks.ModelCheckpoint(
                str(checkpoint),
                monitor="val_loss",
                save_best_only=True,
                save_weights_only=True,
                initial_value_threshold=best,
            ),
            keras.callbacks.TensorBoard(log_dir=str(model_path / "logs")),
            ProgressLogger(config.batch_size),
        ]
        fitted = model.fit(
            train_data,
            validation_data=validation_data,
            epochs=end,
            initial_epoch=epoch,
            callbacks=callbacks,
            verbose=verbose,
        )
        for key, values in fitted.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        epoch = len(history["loss"])
        best = min(history["val_loss"])
    for layer in encoder_layers(model):
        layer.trainable = True
    return history


def train(
    dataset_dir: str,
    model_dir: str,
    config,
    overwrite: bool = False,
    verbose: int = 2,
    bless_margin: float = 0.0,
    previous_model_dir: str | None = None,
    previous_margin: float = 0.0,
) -> dict:
    """Train, evaluate on validation and test, export, report and bless (see lstm_model.bless). Returns the metrics dict."""
    import keras
    import tensorflow as tf

    from lstm_model import data, evaluate, export
    from lstm_model.model import build_classifier
    from schemas import names
    from schemas.cli import UserError
    from textprep.preprocessing import TextSpec

    try:
        manifest = data.read_manifest(dataset_dir)
        vocabulary = data.read_vocabulary(f"{dataset_dir.rstrip('/')}/{names.VOCAB_FILE}")
        for split in (names.SPLIT_TRAIN, names.SPLIT_VALIDATION, names.SPLIT_TEST):
            data.split_files(dataset_dir, split)
    except data.DatasetError as error:
        raise UserError(str(error)) from None
    if manifest.get("task", names.TASK_CLASSIFICATION) != names.TASK_CLASSIFICATION:
        raise UserError(f"{dataset_dir} is a {manifest['task']} dataset, not a classification one")
    if tuple(manifest.get("labels", ())) != names.LABELS:
        raise UserError(f"dataset labels {manifest.get('labels')} differ from this model's {names.LABELS}")
    if config.pretrained_dir:  # fail before writing anything
        _check_pretrained(config, vocabulary)
    if previous_model_dir:  # fail before training, not after
        from lstm_model.bless import load_previous

        load_previous(previous_model_dir, model_dir, manifest.get("dataset_fingerprint"))
    model_path = Path(model_dir)
    if model_path.exists() and any(model_path.iterdir()):
        if not overwrite:
            raise UserError(f"--model_dir {model_dir} is not empty; pass --overwrite or choose another directory")
        shutil.rmtree(model_path)
    model_path.mkdir(parents=True, exist_ok=True)
    (model_path / names.MODEL_CONFIG_FILE).write_text(config.to_json() + "\n")
    shutil.copyfile(f"{dataset_dir.rstrip('/')}/{names.VOCAB_FILE}", model_path / names.VOCAB_FILE)

    # Length-bucketed datasets have unknown cardinality; Keras then warns at the end
    # of the first epoch that the input "ran out of data", which is expected here.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    keras.utils.set_random_seed(config.seed)
    train_data = data.training_dataset(dataset_dir, config)
    validation_data = data.evaluation_dataset(dataset_dir, names.SPLIT_VALIDATION, config)
    model = build_classifier(config, len(vocabulary))
    model.summary(print_fn=LOGGER.info)
    LOGGER.info(
        "training on %s (train %d, validation %d examples), devices: %s",
        dataset_dir,
        min(manifest["splits"]["train"]["records"], config.max_train_examples or 10**12),
        manifest["splits"]["validation"]["records"],
        [d.device_type for d in tf.config.list_logical_devices()],
    )
    checkpoint = model_path / "checkpoints" / "best.weights.h5"
    checkpoint.parent.mkdir()
    pretrained = _start_from_pretrained(model, config) if config.pretrained_dir else None
    started = time.monotonic()
    history = _fit(model, train_data, validation_data, config, checkpoint, model_path, verbose, pretrained is not None)
    train_seconds = time.monotonic() - started
    model.load_weights(str(checkpoint))  # best epoch by val_loss, also if early stopping never fired

    results, predictions = {}, {}
    for split in (names.SPLIT_VALIDATION, names.SPLIT_TEST):
        predictions[split] = evaluate.predict_split(model, dataset_dir, split, config)
        _, labels, probabilities, _ = predictions[split]
        results[split] = evaluate.classification_metrics(labels, probabilities)
    epochs_run = len(history["loss"])
    metrics = {
        **results,
        "epochs_run": epochs_run,
        "best_epoch": int(min(range(epochs_run), key=lambda i: history["val_loss"][i])) + 1,
        "train_seconds": round(train_seconds, 1),
    }
    if pretrained:
        metrics["pretrained"] = pretrained
    (model_path / names.MODEL_METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    (model_path / names.MODEL_HISTORY_FILE).write_text(
        json.dumps({key: [float(v) for v in values] for key, values in history.items()}, indent=2) + "\n"
    )

    model.save(model_path / "model.keras")
    spec = TextSpec.from_dict(manifest["preprocessing"])
    export.export_model(model, vocabulary, config, spec, str(model_path / names.MODEL_EXPORT_DIR))
    manifest_bytes = Path(dataset_dir, names.MANIFEST_FILE).read_bytes()
    info = {
        "model_version": export.model_version(
            "lstm-", config.to_json(), manifest["dataset_fingerprint"], model.get_weights()
        ),
        "task": names.TASK_CLASSIFICATION,
        "labels": list(names.LABELS),
        "positive_label": names.LABELS[1],
        "preprocessing": {**spec.to_dict(), "max_tokens": config.max_tokens, "truncate": config.truncate},
        "vocabulary_size": len(vocabulary),
        "dataset_dir": os.path.abspath(dataset_dir),
        "dataset_fingerprint": manifest["dataset_fingerprint"],
        "dataset_manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "dataset_token_length": {split: manifest["splits"][split]["token_length"] for split in names.SPLITS},
        "dataset_records": {split: manifest["splits"][split]["records"] for split in names.SPLITS},
        "dataset_oov_rate": {split: manifest["splits"][split]["oov_rate"] for split in names.SPLITS},
        # What scoring compares its corpus with (drift): share of raw records quarantined at ingest.
        "dataset_quarantine_rate": manifest["counts"]["quarantined"] / max(manifest["counts"]["records_in"], 1),
        "pretrained": pretrained,
        "test_accuracy": results[names.SPLIT_TEST]["accuracy"],
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "train_seconds": round(train_seconds, 1),
    }
    (model_path / names.MODEL_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    test = results[names.SPLIT_TEST]
    print(
        f"trained {info['model_version']} in {train_seconds:.0f} s ({epochs_run} epochs, best {metrics['best_epoch']}): "
        f"test accuracy {test['accuracy']:.4f}, F1 {test['f1']:.4f}, ROC-AUC {test['roc_auc'] or float('nan'):.4f} "
        f"on {test['examples']} reviews -> {model_dir}",
        flush=True,
    )
    # Baseline on the same splits, full test evaluation, report/ and blessing.json; extends metrics.json.
    return evaluate_and_report(
        dataset_dir,
        model_dir,
        config,
        predictions[names.SPLIT_TEST],
        history,
        bless_margin=bless_margin,
        previous_model_dir=previous_model_dir,
        previous_margin=previous_margin,
    )


def evaluate_and_report(
    dataset_dir: str,
    model_dir: str,
    config,
    test_predictions: tuple,
    history: Mapping[str, Sequence[float]] | None,
    bless_margin: float = 0.0,
    previous_model_dir: str | None = None,
    previous_margin: float = 0.0,
) -> dict[str, Any]:
    """Baseline, full test evaluation, blessing and the HTML report for a trained model directory.

    `test_predictions` is `evaluate.predict_split(model, dataset_dir, "test", config)`. Reads
    MODEL_DIR/metrics.json, model_info.json and vocab.tsv; writes MODEL_DIR/report/,
    MODEL_DIR/blessing.json and the extended MODEL_DIR/metrics.json. Returns the metrics dict.
    """
    from lstm_model import baseline, bless, classification_report, data
    from lstm_model.evaluate import deltas, evaluation_summary
    from schemas import names

    model_path = Path(model_dir)
    metrics = json.loads((model_path / names.MODEL_METRICS_FILE).read_text())
    info_path = model_path / names.MODEL_INFO_FILE
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    ids, labels, probabilities, truncated_lengths = test_predictions

    # Same labelled records as the LSTM (all, or the same --max_train_examples subset).
    result = baseline.fit_baseline(dataset_dir, seed=config.seed, max_train_examples=config.max_train_examples)
    # Lengths before truncation (the TFRecords' `length`), so buckets mean the same for model and baseline.
    full_length = dict(zip(result.test.ids, result.test.lengths.tolist(), strict=True))
    lengths = np.array([full_length.get(i, n) for i, n in zip(ids, truncated_lengths, strict=True)], dtype=np.int64)
    summary = evaluation_summary(labels, probabilities, lengths)
    metrics[names.SPLIT_TEST] = summary
    metrics["baseline"] = result.metrics
    metrics["deltas"] = {names.SPLIT_TEST: deltas(summary, result.metrics[names.SPLIT_TEST])}

    previous = (
        bless.load_previous(previous_model_dir, model_dir, info.get("dataset_fingerprint"))
        if previous_model_dir
        else None
    )
    decision = bless.decide(
        metrics, result.metrics, previous, baseline_margin=bless_margin, previous_margin=previous_margin
    )
    decision["model_version"] = info.get("model_version")
    bless.write_blessing(model_dir, decision)
    metrics["blessing"] = {key: decision[key] for key in ("blessed", "reason", "metric", "margins")}

    vocabulary = data.read_vocabulary(str(model_path / names.VOCAB_FILE))
    texts = classification_report.VocabularyTexts(result.test.ids, result.test.token_ids, vocabulary)
    report_dir = model_path / names.MODEL_REPORT_DIR
    written = classification_report.write_report(
        report_dir,
        labels,
        probabilities,
        lengths,
        ids,
        texts,
        history,
        baseline_metrics=result.metrics,
        baseline_predictions=(result.test.labels, result.test_probabilities),
        blessing=decision,
        best_epoch=metrics.get("best_epoch"),
        max_tokens=getattr(config, "max_tokens", None),
        title=f"Evaluation report: {info.get('model_version', model_path.name)}",
        model_info={
            "model dir": str(model_path),
            "dataset": info.get("dataset_dir", dataset_dir),
            "dataset fingerprint": info.get("dataset_fingerprint"),
            "epochs run": metrics.get("epochs_run"),
            "best epoch": metrics.get("best_epoch"),
            "encoder pretrained from": (info.get("pretrained") or {}).get("pretrained_dir"),
            "language model validation perplexity": (info.get("pretrained") or {}).get("validation_perplexity"),
        },
        summary=summary,
    )
    metrics["confident_errors"] = written["confident_errors"]
    metrics["report"] = f"{names.MODEL_REPORT_DIR}/{classification_report.REPORT_HTML}"
    (model_path / names.MODEL_METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    base = result.metrics[names.SPLIT_TEST]
    print(
        f"baseline (TF-IDF + logistic regression): test accuracy {base['accuracy']:.4f}; LSTM - baseline "
        f"{metrics['deltas'][names.SPLIT_TEST]['accuracy']:+.4f}; LSTM ECE {summary['ece']:.4f}\n"
        f"{'BLESSED' if decision['blessed'] else 'NOT BLESSED'}: {decision['reason']}\n"
        f"report: {report_dir / classification_report.REPORT_HTML}",
        flush=True,
    )
    return metrics


def report_existing(model_dir: str, dataset_dir: str, args: argparse.Namespace) -> dict:
    """Rewrites the report, baseline and blessing of a trained classifier (`python -m lstm_model.report`).

    `dataset_dir` is the dataset the model was trained on (checked by fingerprint); `args` carries
    the blessing flags. Predicts the test split again with MODEL_DIR/model.keras.
    """
    import keras

    from lstm_model import data, evaluate
    from lstm_model import model as _registers_custom_layers  # noqa: F401  (MaskedMaxMeanPooling1D for load_model)
    from lstm_model.config import TrainConfig
    from schemas import names
    from schemas.cli import UserError

    model_path = Path(model_dir)
    missing = [
        name for name in (names.MODEL_CONFIG_FILE, names.VOCAB_FILE, "model.keras") if not (model_path / name).exists()
    ]
    if missing:
        raise UserError(f"--model_dir {model_dir} lacks {', '.join(missing)}: not a trained classifier directory")
    try:
        data.read_manifest(dataset_dir)
    except data.DatasetError as error:
        raise UserError(str(error)) from None
    config = TrainConfig.from_json(model_path / names.MODEL_CONFIG_FILE)
    model = keras.saving.load_model(model_path / "model.keras", safe_mode=True)  # no Python lambdas deserialized
    LOGGER.info("predicting the test split of %s with %s", dataset_dir, model_path)
    predictions = evaluate.predict_split(model, dataset_dir, names.SPLIT_TEST, config)
    history_path = model_path / names.MODEL_HISTORY_FILE
    history = json.loads(history_path.read_text()) if history_path.exists() else None
    return evaluate_and_report(
        dataset_dir,
        str(model_path),
        config,
        predictions,
        history,
        bless_margin=args.bless_margin,
        previous_model_dir=args.previous_model_dir,
        previous_margin=args.previous_margin,
    )


def run(argv: list[str] | None = None) -> dict:
    from lstm_model.config import resolve_config
    from schemas.cli import UserError, setup_logging

    args = build_parser().parse_args(argv)
    setup_logging()
    logging.getLogger("lstm_model").setLevel(logging.INFO)
    try:
        config = resolve_config(args.config, args)
    except (ValueError, OSError) as error:
        raise UserError(f"bad config: {error}") from None
    return train(
        args.dataset_dir,
        args.model_dir,
        config,
        overwrite=args.overwrite,
        verbose=args.verbose,
        bless_margin=args.bless_margin,
        previous_model_dir=args.previous_model_dir,
        previous_margin=args.previous_margin,
    )


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from schemas.cli import main_with_user_errors

    sys.exit(main_with_user_errors(run))


if __name__ == "__main__":
    main()
