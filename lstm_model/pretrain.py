"""Pretrain an LSTM language model on the unlabeled text of an ingested dataset.

    python -m lstm_model.pretrain --dataset_dir data/processed/imdb_full \\
        --output_dir models/imdb_full_lm --epochs 8 --steps_per_epoch 300

`--init_from LM_DIR` continues from an earlier run's weights (a longer budget in
steps; give another --seed so the windows come in a new order). It learns from the token ids ingest wrote (default: the `unsup` and `train` splits;
never `test`), with the dataset's vocabulary, and measures exact perplexity on the
`validation` split after every epoch. Then train a classifier from it:

    python -m lstm_model.train --dataset_dir ... --model_dir ... --pretrained_dir models/imdb_full_lm

OUTPUT_DIR afterwards holds:
  config.json                  the resolved PretrainConfig
  vocab.tsv                    the dataset's vocabulary (travels with the weights)
  language_model.weights.h5    weights after the last epoch (what the classifier starts from)
  checkpoints/epoch_NN.weights.h5  weights after each epoch (fine-tune from an earlier budget)
  history.json                 per-epoch loss (sampled softmax, train) and val_loss (exact, nats per token)
  metrics.json                 validation cross-entropy and perplexity per epoch, tokens seen, wall time
  model_info.json              dataset fingerprint and manifest sha256, splits used, versions
  report/training_curves.png   train and validation loss per epoch
  logs/                        TensorBoard logs
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
import warnings
from pathlib import Path

LOGGER = logging.getLogger("lstm_model")
WEIGHTS_FILE = "language_model.weights.h5"


def build_parser() -> argparse.ArgumentParser:
    from lstm_model.config import PretrainConfig, add_config_flags

    parser = argparse.ArgumentParser(
        prog="python -m lstm_model.pretrain",
        description="Pretrain a (bidirectional) LSTM language model on the unlabeled text of an ingested dataset; "
        "`python -m lstm_model.train --pretrained_dir OUTPUT_DIR` then fine-tunes a classifier from it.",
    )
    parser.add_argument("--dataset_dir", required=True, help="Output directory of the ingest pipeline.")
    parser.add_argument("--output_dir", required=True, help="Directory to write the language model to (local).")
    parser.add_argument("--config", default=None, help="JSON file of PretrainConfig values; flags below override it.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing language model in --output_dir.")
    parser.add_argument(
        "--init_from",
        default=None,
        help="Language model directory to continue from (its weights; same vocabulary and encoder shape): "
        "a longer budget without redoing the epochs already run.",
    )
    parser.add_argument(
        "--verbose", type=int, default=2, choices=[0, 1, 2], help="Keras fit verbosity (default: %(default)s)."
    )
    add_config_flags(parser, PretrainConfig)
    return parser


def read_pretrained(pretrained_dir: str, flag: str = "--pretrained_dir"):
    """(PretrainConfig, vocabulary) of a language model directory; UserError (naming `flag`) if it is not one."""
    from lstm_model import data
    from lstm_model.config import PretrainConfig
    from schemas import names
    from schemas.cli import UserError

    path = Path(pretrained_dir)
    missing = [
        name for name in (names.MODEL_CONFIG_FILE, names.VOCAB_FILE, WEIGHTS_FILE) if not (path / name).is_file()
    ]
    if missing:
        raise UserError(
            f"{flag} {pretrained_dir} is not a language model directory (missing {', '.join(missing)}); "
            "run python -m lstm_model.pretrain first"
        )
    try:
        config = PretrainConfig.from_json(path / names.MODEL_CONFIG_FILE)
        vocabulary = data.read_vocabulary(str(path / names.VOCAB_FILE))
    except (ValueError, data.DatasetError) as error:
        raise UserError(f"{flag} {pretrained_dir}: {error}") from None
    return config, vocabulary


def load_language_model(pretrained_dir: str, weights_file: str = WEIGHTS_FILE):
    """The language model of `pretrained_dir` with its weights: (model, PretrainConfig, vocabulary)."""
    from lstm_model.language_model import build_language_model

    config, vocabulary = read_pretrained(pretrained_dir)
    model = build_language_model(config, len(vocabulary))
    model.load_weights(str(Path(pretrained_dir) / weights_file))
    return model, config, vocabulary


def _check_init_from(init_from: str, config, vocabulary: list[str]) -> dict:
    """UserError unless `init_from` is a language model of the same vocabulary and shape; returns its metrics."""
    from schemas import names
    from schemas.cli import UserError

    earlier_config, earlier_vocabulary = read_pretrained(init_from, "--init_from")
    if earlier_vocabulary != vocabulary:
        raise UserError(f"--init_from {init_from} has another vocabulary than this dataset's")
    shape = ("bidirectional", "embedding_dim", "lstm_units", "num_layers")
    differences = [
        f"{field}: {getattr(earlier_config, field)!r} there, {getattr(config, field)!r} here"
        for field in shape
        if getattr(earlier_config, field) != getattr(config, field)
    ]
    if differences:
        raise UserError(f"--init_from {init_from} has another encoder shape: " + "; ".join(differences))
    metrics_path = Path(init_from) / names.MODEL_METRICS_FILE
    return json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}


class _TokenProgress:
    """Keras callback: a log line every `every_seconds` with the loss and tokens/s."""

    def __new__(cls, *args, **kwargs):
        import keras

        class _Progress(keras.callbacks.Callback):
            def __init__(self, tokens_per_step: int, every_seconds: float = 30.0):
                super().__init__()
                self.tokens_per_step = tokens_per_step
                self.every = every_seconds
                self.steps = 0  # training steps run, all epochs

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch
                self.start = self.last = time.monotonic()

            def on_train_batch_end(self, batch, logs=None):
                self.steps += 1
                now = time.monotonic()
                if now - self.last >= self.every:
                    LOGGER.info(
                        "epoch %d step %d: sampled loss %.3f (%.0f tokens/s)",
                        self.epoch + 1,
                        batch + 1,
                        (logs or {}).get("loss", float("nan")),
                        (batch + 1) * self.tokens_per_step / (now - self.start),
                    )
                    self.last = now

        return _Progress(*args, **kwargs)


def pretrain(
    dataset_dir: str, output_dir: str, config, overwrite: bool = False, verbose: int = 2, init_from: str | None = None
) -> dict:
    """Train the language model; returns the metrics dict (also written to OUTPUT_DIR/metrics.json)."""
    import keras
    import tensorflow as tf

    from lstm_model import data
    from lstm_model.classification_report import plot_training_curves
    from lstm_model.language_model import build_language_model, compile_language_model, window_dataset
    from schemas import names
    from schemas.cli import UserError

    vocabulary_path = f"{dataset_dir.rstrip('/')}/{names.VOCAB_FILE}"
    try:
        manifest = data.read_manifest(dataset_dir)
        vocabulary = data.read_vocabulary(vocabulary_path)
        train_files = [path for split in config.split_list for path in data.split_files(dataset_dir, split)]
        validation_files = data.split_files(dataset_dir, names.SPLIT_VALIDATION)
    except data.DatasetError as error:
        raise UserError(str(error)) from None
    earlier = _check_init_from(init_from, config, vocabulary) if init_from else None
    out = Path(output_dir)
    if init_from and out.resolve() == Path(init_from).resolve():
        raise UserError("--init_from must be another directory than --output_dir")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"--output_dir {output_dir} is not empty; pass --overwrite or choose another directory")
        shutil.rmtree(out)
    (out / "checkpoints").mkdir(parents=True)
    (out / names.MODEL_REPORT_DIR).mkdir()
    (out / names.MODEL_CONFIG_FILE).write_text(config.to_json() + "\n")
    shutil.copyfile(vocabulary_path, out / names.VOCAB_FILE)

    warnings.filterwarnings("ignore", message="Your input ran out of data")
    keras.utils.set_random_seed(config.seed)
    train_windows = window_dataset(train_files, config, shuffle=True)
    if config.steps_per_epoch:
        train_windows = train_windows.repeat()  # epochs are steps_per_epoch long and go on where the last one ended
    validation_windows = (
        window_dataset(validation_files, config, shuffle=False).unbatch().take(config.validation_windows)
    )
    validation_windows = validation_windows.batch(config.batch_size).cache()
    tokens = {split: manifest["splits"][split]["token_length"] for split in config.split_list}
    LOGGER.info("pretraining on %s splits %s (token lengths %s)", dataset_dir, config.split_list, tokens)
    model = compile_language_model(
        build_language_model(config, len(vocabulary), data.read_token_counts(vocabulary_path)), config
    )
    if init_from:
        model.load_weights(str(Path(init_from) / WEIGHTS_FILE))
        LOGGER.info("continuing from %s (%s tokens seen there)", init_from, earlier.get("tokens_seen"))
    model.summary(print_fn=LOGGER.info)
    tokens_per_step = config.batch_size * config.sequence_length

    class _EpochCheckpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.save_weights(str(out / "checkpoints" / f"epoch_{epoch + 1:02d}.weights.h5"))

    progress = _TokenProgress(tokens_per_step)
    started = time.monotonic()
    history = model.fit(
        train_windows,
        validation_data=validation_windows,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch or None,
        callbacks=[
            _EpochCheckpoint(),
            keras.callbacks.TensorBoard(log_dir=str(out / "logs")),
            progress,
        ],
        verbose=verbose,
    )
    train_seconds = time.monotonic() - started
    model.save_weights(str(out / WEIGHTS_FILE))

    losses = history.history
    tokens_seen = tokens_per_step * progress.steps
    metrics = {
        "validation": [
            {"epoch": i + 1, "cross_entropy": float(v), "perplexity": float(math.exp(min(v, 50.0)))}
            for i, v in enumerate(losses["val_loss"])
        ],
        "train_sampled_loss": [float(v) for v in losses["loss"]],
        "epochs_run": len(losses["loss"]),
        "steps": progress.steps,
        "tokens_per_step": tokens_per_step,
        "tokens_seen": tokens_seen,
        "train_seconds": round(train_seconds, 1),
        "tokens_per_second": round(tokens_seen / train_seconds),
        "validation_windows": config.validation_windows,
    }
    (out / names.MODEL_METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    (out / names.MODEL_HISTORY_FILE).write_text(
        json.dumps({key: [float(v) for v in values] for key, values in losses.items()}, indent=2) + "\n"
    )
    plot_training_curves(
        losses,
        out / names.MODEL_REPORT_DIR / "training_curves.png",
        loss_label="cross-entropy (nats per token)",
        title="Language model: train loss (sampled softmax), validation (exact)",
    )
    info = {
        "task": "language_model",
        "initialised_from": None
        if not init_from
        else {"dir": os.path.abspath(init_from), "tokens_seen": earlier.get("tokens_seen")},
        "splits": config.split_list,
        "vocabulary_size": len(vocabulary),
        "dataset_dir": os.path.abspath(dataset_dir),
        "dataset_fingerprint": manifest["dataset_fingerprint"],
        "dataset_manifest_sha256": hashlib.sha256(Path(dataset_dir, names.MANIFEST_FILE).read_bytes()).hexdigest(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "train_seconds": round(train_seconds, 1),
    }
    (out / names.MODEL_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    last = metrics["validation"][-1]
    print(
        f"pretrained language model in {train_seconds:.0f} s ({metrics['epochs_run']} epochs): validation "
        f"cross-entropy {last['cross_entropy']:.3f} nats/token, perplexity {last['perplexity']:.1f} -> {output_dir}",
        flush=True,
    )
    return metrics


def run(argv: list[str] | None = None) -> dict:
    from lstm_model.config import PretrainConfig, resolve_config
    from schemas.cli import UserError, setup_logging

    args = build_parser().parse_args(argv)
    setup_logging()
    logging.getLogger("lstm_model").setLevel(logging.INFO)
    try:
        config = resolve_config(args.config, args, PretrainConfig)
    except (ValueError, OSError) as error:
        raise UserError(f"bad config: {error}") from None
    return pretrain(
        args.dataset_dir,
        args.output_dir,
        config,
        overwrite=args.overwrite,
        verbose=args.verbose,
        init_from=args.init_from,
    )


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from schemas.cli import main_with_user_errors

    sys.exit(main_with_user_errors(run))


if __name__ == "__main__":
    main()
