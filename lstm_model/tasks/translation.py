"""Translation task: train a BiLSTM encoder + attention LSTM decoder on a translation dataset, evaluate, export.

    python -m lstm_model.train --dataset_dir data/processed/multi30k_de_en --model_dir models/multi30k_de_en \\
        --max_minutes 20

(`lstm_model.train` hands a translation dataset to this module; `--task translation --help` lists the flags.)
Training reads length-bucketed, per-batch-padded sentence pairs (`lstm_model.translation_data`) with teacher
forcing; after every epoch (a pass over the training pairs, or --steps_per_epoch steps) it measures the
validation loss (all pairs) and the validation BLEU of greedy translations (the first
--validation_bleu_sentences pairs), writes TensorBoard scalars, and checkpoints the weights, the optimizer
state and the loop's state (`checkpoints/`). A killed run continues with `--resume` to the same total of
epochs. The best epoch by validation BLEU is kept; --early_stopping_patience epochs without a better one stop
the run; --max_minutes bounds the wall clock (the cosine learning-rate schedule then runs over the minutes).

Evaluation translates the test split through the exported SavedModel (raw source text in) with beam search
(`translate`) and greedily (`translate_greedy`), and scores it with sacreBLEU (BLEU, chrF, signatures).
The baseline is word-by-word translation with an IBM Model 1 dictionary fitted on the same training pairs
(`lstm_model.dictionary_baseline`); the model is blessed if its test BLEU beats the baseline's by more than
--bless_margin (and --previous_model_dir's, if given).

MODEL_DIR afterwards holds:
  config.json                 the resolved TranslationConfig
  vocab.source.tsv            the dataset's source vocabulary (vocab.tsv: the same file, the model's input side)
  vocab.target.tsv            the dataset's target vocabulary
  model_info.json             model version, task, preprocessing, vocabularies, decoding defaults, signatures
  metrics.json                validation and test loss / BLEU / chrF (test: beam and greedy, sentences per
                              second, sacreBLEU signatures), the baseline's, the curve, the deciding metric
  history.json                per-epoch train and validation loss, validation BLEU, minutes
  translations.jsonl          every test sentence: source, reference, beam and greedy output, sentence BLEU
  report/index.html           evaluation report (curves, BLEU by length, examples, attention heatmaps)
  blessing.json               blessed or not, and why
  model.weights.h5            the weights (the architecture is config.json)
  export/                     SavedModel: translate, translate_greedy, attention, preprocess signatures
  checkpoints/                last and best weights, optimizer state, loop state (for --resume)
  logs/                       TensorBoard logs
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
TRANSLATIONS_FILE = "translations.jsonl"
ATTENTION_EXAMPLES = 4  # test sentences whose attention the report draws


def build_parser() -> argparse.ArgumentParser:
    from lstm_model.bless import add_blessing_flags
    from lstm_model.config import add_config_flags
    from lstm_model.seq2seq import TranslationConfig

    parser = argparse.ArgumentParser(
        prog="python -m lstm_model.train",
        description="Train, evaluate and export a BiLSTM encoder / attention LSTM decoder translation model from a "
        "translation dataset (python -m pipelines.ingest --task translation). Config values come from the defaults, "
        "then --config, then the flags below.",
    )
    parser.add_argument("--task", default=None, help="The dataset's task (read from its manifest).")
    parser.add_argument("--dataset_dir", required=True, help="Output directory of the ingest pipeline.")
    parser.add_argument("--model_dir", required=True, help="Directory to write the model to (local).")
    parser.add_argument("--config", default=None, help="JSON file of TranslationConfig values; flags override it.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing model in --model_dir.")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="Continue a run that stopped (killed, or out of --max_minutes) from MODEL_DIR/checkpoints, "
        "to the same total of --epochs (the config must be the stopped run's).",
    )
    parser.add_argument(
        "--stop_after_epochs",
        type=int,
        default=0,
        help="Stop after this many epochs of this invocation, leaving the checkpoint for --resume and skipping "
        "evaluation and export (a pre-emptible schedule: run a few epochs at a time; default 0: run to the end).",
    )
    parser.add_argument(
        "--baseline_iterations", type=int, default=5, help="EM iterations of the IBM Model 1 baseline (default: 5)."
    )
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1], help="Progress lines (default: 1).")
    add_config_flags(parser, TranslationConfig)
    add_blessing_flags(parser)
    return parser


class _Functions:
    """The compiled training, loss and decoding steps of one model."""

    def __init__(self, model, target_vocabulary: list[str], spec, config):
        # autograph=False everywhere: nothing here needs it (loops are explicit tf.while_loops), and autograph
        # re-reads the source of every function it converts, which breaks when a file changes mid-run.
        import tensorflow as tf

        from lstm_model import seq2seq, translation_export
        from textprep.preprocessing import TextPreprocessor

        ids = tf.TensorSpec([None, None], tf.int32)
        lengths = tf.TensorSpec([None], tf.int32)
        smoothing = config.label_smoothing
        optimizer = model.optimizer
        target_pre = TextPreprocessor(target_vocabulary, spec=spec)

        @tf.function(input_signature=[ids, ids, ids], autograph=False)
        def train_step(source, target_in, target_out):
            with tf.GradientTape() as tape:
                if config.num_sampled:  # the sampled loss stands in for the NLL in the training log
                    loss, real = seq2seq.sampled_token_losses(model, source, target_in, target_out, config.num_sampled)
                    nll = loss
                else:
                    logits = model([source, target_in], training=True)
                    loss, nll, real = seq2seq.token_losses(logits, target_out, smoothing)
                mean = tf.reduce_sum(loss) / tf.maximum(tf.reduce_sum(real), 1.0)
            gradients = tape.gradient(mean, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
            return tf.reduce_sum(nll), tf.reduce_sum(real)

        @tf.function(input_signature=[ids, ids, ids], autograph=False)
        def loss_step(source, target_in, target_out):
            logits = model([source, target_in], training=False)
            _, nll, real = seq2seq.token_losses(logits, target_out)
            return tf.reduce_sum(nll), tf.reduce_sum(real)

        def decoder(width):
            @tf.function(input_signature=[ids, lengths], autograph=False)
            def decode(source, source_tokens):
                out = seq2seq.translate_ids(
                    model,
                    source,
                    source_tokens,
                    beam_width=width,
                    length_penalty=config.length_penalty,
                    max_length_a=config.max_length_a,
                    max_length_b=config.max_length_b,
                )
                return translation_export.detokenize(target_pre, out["token_ids"], out["num_tokens"])

            return decode

        self.train_step, self.loss_step, self.greedy = train_step, loss_step, decoder(1)


def _split_loss(functions, batches) -> dict[str, Any]:
    total, tokens = 0.0, 0.0
    for batch in batches:
        nll, real = functions.loss_step(batch["source"], batch["target_in"], batch["target_out"])
        total, tokens = total + float(nll), tokens + float(real)
    nats = total / max(tokens, 1.0)
    return {"loss": round(nats, 5), "perplexity": round(math.exp(min(nats, 50.0)), 3), "tokens": int(tokens)}


def _greedy_bleu(functions, batches) -> dict[str, Any]:
    from lstm_model import bleu

    hypotheses, references = [], []
    for batch in batches:
        out = functions.greedy(batch["source"], batch["source_tokens"])
        hypotheses += [value.decode("utf-8") for value in out.numpy()]
        references += [value.decode("utf-8") for value in batch["target_text"].numpy()]
    return bleu.corpus_scores(hypotheses, references)


def _learning_rate(config, step: int, minutes: float, total_steps: int) -> float:
    from lstm_model.training import cosine_learning_rate

    if config.lr_schedule != "cosine":
        return config.learning_rate
    progress = minutes / config.max_minutes if config.max_minutes else step / max(total_steps, 1)
    return cosine_learning_rate(config.learning_rate, progress)


def train(dataset_dir: str, model_dir: str, config, args: argparse.Namespace) -> dict:
    """Train, evaluate, export, report and bless a translation model; returns metrics.json's content."""
    import keras
    import tensorflow as tf

    from lstm_model import data, export, training, translation_data
    from lstm_model.seq2seq import WEIGHTS_FILE, Seq2Seq, compile_model
    from schemas import names
    from schemas.cli import UserError
    from textprep.preprocessing import TextSpec

    try:
        manifest, source_vocabulary, target_vocabulary = translation_data.read_dataset_info(dataset_dir)
        for split in (names.SPLIT_TRAIN, names.SPLIT_VALIDATION, names.SPLIT_TEST):
            data.split_files(dataset_dir, split)
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
    base = dataset_dir.rstrip("/")
    vocab_files = manifest.get("vocabularies", {})
    for side, name in (("source", names.SOURCE_VOCAB_FILE), ("target", names.TARGET_VOCAB_FILE)):
        shutil.copyfile(f"{base}/{vocab_files.get(side, {}).get('file', name)}", model_path / name)
    # vocab.tsv: the model's input side, which the shared inference plumbing checks against model_info.json.
    shutil.copyfile(model_path / names.SOURCE_VOCAB_FILE, model_path / names.VOCAB_FILE)
    checkpoints = model_path / training.CHECKPOINT_DIR

    keras.utils.set_random_seed(config.seed)
    model = compile_model(Seq2Seq(config, len(source_vocabulary), len(target_vocabulary)).build_all())
    functions = _Functions(model, target_vocabulary, spec, config)
    validation_batches = translation_data.evaluation_dataset(dataset_dir, names.SPLIT_VALIDATION, config)
    bleu_batches = translation_data.evaluation_dataset(
        dataset_dir, names.SPLIT_VALIDATION, config, limit=config.validation_bleu_sentences
    )
    train_records = manifest["splits"][names.SPLIT_TRAIN]["records"]
    steps_per_epoch = config.steps_per_epoch or max(1, math.ceil(train_records / config.batch_size))
    total_steps = config.epochs * steps_per_epoch
    state = {"epoch": 0, "step": 0, "seconds": 0.0, "history": [], "best": None, "since_best": 0}
    state["learning_rate"] = config.learning_rate
    if resuming:
        state = training.restore_checkpoint(checkpoints, model)
        LOGGER.info("resuming after epoch %d (%.1f minutes of training so far)", state["epoch"], state["seconds"] / 60)
    writer = tf.summary.create_file_writer(str(model_path / "logs"))
    LOGGER.info(
        "training on %s: %d train pairs, vocabularies %d (source) and %d (target), %s attention, %d parameters; %s",
        dataset_dir,
        train_records,
        len(source_vocabulary),
        len(target_vocabulary),
        config.attention,
        model.count_params(),
        [d.device_type for d in tf.config.list_logical_devices()],
    )
    if config.num_sampled and config.label_smoothing:
        LOGGER.info("sampled softmax (num_sampled %d): label smoothing is not applied in training", config.num_sampled)
    budget = config.max_minutes * 60.0
    started = time.monotonic() - state["seconds"]
    stopped_by = "epochs"
    first_epoch = state["epoch"]
    while state["epoch"] < config.epochs:
        epoch = state["epoch"]
        # The order depends on (seed, epoch) only: a resumed run sees what an uninterrupted one would have.
        batches = translation_data.training_dataset(dataset_dir, config, seed_offset=epoch)
        if config.steps_per_epoch:
            batches = batches.repeat().take(config.steps_per_epoch)
        total_nll, total_tokens, last_log, steps = 0.0, 0.0, time.monotonic(), 0
        for source, target_in, target_out in batches:
            rate = _learning_rate(config, state["step"], (time.monotonic() - started) / 60, total_steps)
            if rate != state["learning_rate"] or steps == 0:
                state["learning_rate"] = rate
                model.optimizer.learning_rate.assign(rate)
            nll, real = functions.train_step(source, target_in, target_out)
            total_nll, total_tokens = total_nll + float(nll), total_tokens + float(real)
            state["step"] += 1
            steps += 1
            now = time.monotonic()
            if args.verbose and now - last_log >= 30:
                LOGGER.info(
                    "epoch %d step %d: loss %.4f, %.1f min",
                    epoch + 1,
                    steps,
                    total_nll / max(total_tokens, 1.0),
                    (now - started) / 60,
                )
                last_log = now
            if budget and now - started >= budget:
                stopped_by = "max_minutes"
                break
        validation = _split_loss(functions, validation_batches)
        scores = _greedy_bleu(functions, bleu_batches)
        seconds = time.monotonic() - started
        entry = {
            "epoch": epoch + 1,
            "steps": state["step"],
            "minutes": round(seconds / 60, 3),
            "loss": round(total_nll / max(total_tokens, 1.0), 5),
            "val_loss": validation["loss"],
            "val_bleu": scores["bleu"],
            "val_chrf": scores["chrf"],
            "learning_rate": state["learning_rate"],
        }
        state["history"].append(entry)
        with writer.as_default(step=state["step"]):
            tf.summary.scalar("loss/train_nats_per_token", entry["loss"])
            tf.summary.scalar("loss/validation_nats_per_token", entry["val_loss"])
            tf.summary.scalar("bleu/validation_greedy", entry["val_bleu"])
            tf.summary.scalar("chrf/validation_greedy", entry["val_chrf"])
            tf.summary.scalar("learning_rate", state["learning_rate"])
        writer.flush()
        improved = state["best"] is None or entry["val_bleu"] > state["best"]
        state["best"] = entry["val_bleu"] if improved else state["best"]
        state["since_best"] = 0 if improved else state["since_best"] + 1
        state["epoch"] = epoch + 1
        state["seconds"] = seconds
        training.save_checkpoint(checkpoints, model, state, best=improved)
        print(
            f"epoch {entry['epoch']}: train loss{' (sampled softmax)' if config.num_sampled else ''} "
            f"{entry['loss']:.4f}, validation loss {entry['val_loss']:.4f}, "
            f"validation BLEU {entry['val_bleu']:.2f} (greedy, {scores['sentences']} sentences), "
            f"{entry['minutes']:.1f} min{' *' if improved else ''}",
            flush=True,
        )
        if stopped_by == "max_minutes":
            break
        if args.stop_after_epochs and state["epoch"] - first_epoch >= args.stop_after_epochs:
            if state["epoch"] < config.epochs:
                print(f"stopped after epoch {state['epoch']} (--stop_after_epochs); --resume continues", flush=True)
                return {"stopped_after_epoch": state["epoch"], "history": state["history"]}
        if config.early_stopping_patience and state["since_best"] >= config.early_stopping_patience:
            stopped_by = "early_stopping"
            break
        if budget and time.monotonic() - started >= budget:
            stopped_by = "max_minutes"
            break
    train_seconds = state["seconds"]
    history = state["history"]
    model.load_weights(str(checkpoints / "best.weights.h5"))
    model.save_weights(str(model_path / WEIGHTS_FILE))

    from lstm_model import bleu, dictionary_baseline, translation_export

    test_batches = translation_data.evaluation_dataset(dataset_dir, names.SPLIT_TEST, config)
    results = {
        names.SPLIT_VALIDATION: {
            **_split_loss(functions, validation_batches),
            **_greedy_bleu(functions, bleu_batches),
            "decoding": "greedy",
        },
        names.SPLIT_TEST: _split_loss(functions, test_batches),
    }
    export_dir = model_path / names.MODEL_EXPORT_DIR
    translation_export.export_translation_model(model, source_vocabulary, target_vocabulary, spec, str(export_dir))
    LOGGER.info("exported %s", export_dir)
    loaded = export.load_exported(str(export_dir))
    test_sources, test_references, _, _ = translation_data.texts(dataset_dir, names.SPLIT_TEST)
    decoded = {}
    for label, signature, width in (
        ("beam", names.TRANSLATE_SIGNATURE, config.beam_width),
        ("greedy", translation_export.GREEDY_SIGNATURE, 1),
    ):
        # One warm-up call, so sentences per second measure translation, not the graph's first-call setup.
        translation_export.translate_batches(
            loaded.signatures[signature], test_sources[:1], config.max_length_a, config.max_length_b
        )
        began = time.monotonic()
        outputs, rows = translation_export.translate_batches(
            loaded.signatures[signature], test_sources, config.max_length_a, config.max_length_b
        )
        elapsed = time.monotonic() - began
        scores = bleu.corpus_scores(outputs, test_references)
        decoded[label] = {"outputs": outputs, "rows": rows}
        results[names.SPLIT_TEST][label] = {
            **scores,
            "beam_width": width,
            "length_penalty": config.length_penalty if width > 1 else None,
            "seconds": round(elapsed, 2),
            "sentences_per_second": round(len(outputs) / max(elapsed, 1e-9), 1),
        }
    LOGGER.info(
        "test: beam %.2f BLEU (%.1f sentences/s), greedy %.2f BLEU (%.1f sentences/s)",
        results[names.SPLIT_TEST]["beam"]["bleu"],
        results[names.SPLIT_TEST]["beam"]["sentences_per_second"],
        results[names.SPLIT_TEST]["greedy"]["bleu"],
        results[names.SPLIT_TEST]["greedy"]["sentences_per_second"],
    )
    # The headline test figures are those of the exported default signature (beam search).
    beam = results[names.SPLIT_TEST]["beam"]
    results[names.SPLIT_TEST].update({key: beam[key] for key in ("bleu", "chrf", "bleu_signature", "chrf_signature")})
    results[names.SPLIT_TEST]["sentences"] = beam["sentences"]
    results[names.SPLIT_TEST]["decoding"] = f"beam {config.beam_width}"

    # The baseline: word-by-word IBM Model 1 dictionary from the same training pairs, on the same test sentences.
    _, _, train_source_ids, train_target_ids = translation_data.texts(dataset_dir, names.SPLIT_TRAIN)
    baseline_outputs, baseline_fit = dictionary_baseline.fit_and_translate(
        train_source_ids,
        train_target_ids,
        source_vocabulary,
        target_vocabulary,
        test_sources,
        spec,
        iterations=args.baseline_iterations,
    )
    if baseline_outputs:
        polished = translation_export.polish(tf.constant(baseline_outputs), spec.tokenizer).numpy()
        baseline_outputs = [value.decode("utf-8") for value in polished]
    LOGGER.info("baseline fitted in %.1f s", baseline_fit["fit_seconds"])
    baseline = {
        "model": f"IBM Model 1 word-by-word ({args.baseline_iterations} EM iterations)",
        names.SPLIT_TEST: bleu.corpus_scores(baseline_outputs, test_references),
        **baseline_fit,
    }

    # Per-sentence records for the report and for inspection.
    sentence_scores = bleu.sentence_bleu(decoded["beam"]["outputs"], test_references)
    translations = [
        {
            "source": source,
            "reference": reference,
            "beam": beam_out,
            "greedy": greedy_out,
            "baseline": base_out,
            "sentence_bleu": round(score, 2),
            "source_tokens": int(row["source_tokens"]),
            "source_oov": int(row["source_oov"]),
            "log_prob": round(float(row["log_prob"]), 4),
        }
        for source, reference, beam_out, greedy_out, base_out, score, row in zip(
            test_sources,
            test_references,
            decoded["beam"]["outputs"],
            decoded["greedy"]["outputs"],
            baseline_outputs,
            sentence_scores,
            decoded["beam"]["rows"],
            strict=True,
        )
    ]
    with (model_path / TRANSLATIONS_FILE).open("w", encoding="utf-8") as handle:
        for record in translations:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    attention_examples = _attention_examples(loaded, translations, config)

    version = export.model_version("lstm-mt-", config.to_json(), manifest["dataset_fingerprint"], model.get_weights())
    best_index = max(range(len(history)), key=lambda i: history[i]["val_bleu"]) if history else 0
    metrics = {
        **results,
        "baseline": baseline,
        "deciding": {"metric": "bleu", "split": names.SPLIT_TEST, "lower_is_better": False},
        "curve": [{k: e[k] for k in ("minutes", "steps", "loss", "val_loss", "val_bleu")} for e in history],
        "epochs_run": len(history),
        "best_epoch": best_index + 1,
        "stopped_by": stopped_by,
        "train_seconds": round(train_seconds, 1),
        "steps": state["step"],
        "parameters": int(model.count_params()),
        "attention": config.attention,
    }
    manifest_bytes = Path(dataset_dir, names.MANIFEST_FILE).read_bytes()
    info = {
        "model_version": version,
        "task": names.TASK_TRANSLATION,
        "labels": [],
        "source_language": manifest.get("source_language"),
        "target_language": manifest.get("target_language"),
        "preprocessing": spec.to_dict(),
        "vocabulary_size": len(source_vocabulary),  # vocab.tsv (= vocab.source.tsv), checked by pipelines.inference
        "source_vocabulary_size": len(source_vocabulary),
        "target_vocabulary_size": len(target_vocabulary),
        "vocabulary_files": {"source": names.SOURCE_VOCAB_FILE, "target": names.TARGET_VOCAB_FILE},
        "export_dir": names.MODEL_EXPORT_DIR,
        "signatures": {
            "translate": names.TRANSLATE_SIGNATURE,
            "translate_greedy": translation_export.GREEDY_SIGNATURE,
            "attention": translation_export.ATTENTION_SIGNATURE,
            "preprocess": names.PREPROCESS_SIGNATURE,
        },
        "decoding": {
            "beam_width": config.beam_width,
            "length_penalty": config.length_penalty,
            "max_length_a": config.max_length_a,
            "max_length_b": config.max_length_b,
            "max_source_length": config.max_source_length,
        },
        "attention": config.attention,
        "dataset_dir": os.path.abspath(dataset_dir),
        "dataset_fingerprint": manifest["dataset_fingerprint"],
        "dataset_manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "dataset_records": {split: manifest["splits"].get(split, {}).get("records") for split in names.SPLITS},
        "validation_bleu": results[names.SPLIT_VALIDATION]["bleu"],
        "test_bleu": results[names.SPLIT_TEST]["bleu"],
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "train_seconds": round(train_seconds, 1),
    }
    (model_path / names.MODEL_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    (model_path / names.MODEL_HISTORY_FILE).write_text(json.dumps(history, indent=2) + "\n")

    from lstm_model import bless, translation_report

    previous = (
        bless.load_previous(args.previous_model_dir, model_dir, manifest.get("dataset_fingerprint"))
        if args.previous_model_dir
        else None
    )
    decision = bless.decide(
        metrics,
        baseline,
        previous,
        metric="bleu",
        baseline_margin=args.bless_margin,
        previous_margin=args.previous_margin,
        split=names.SPLIT_TEST,
    )
    decision["model_version"] = version
    bless.write_blessing(model_dir, decision)
    metrics["blessing"] = {key: decision[key] for key in ("blessed", "reason", "metric", "margins")}
    (model_path / names.MODEL_METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    translation_report.write_report(model_path, metrics, info, translations, attention_examples, decision)
    test = results[names.SPLIT_TEST]
    print(
        f"trained {version} in {train_seconds / 60:.1f} min ({len(history)} epochs, stopped by {stopped_by}): "
        f"test BLEU {test['bleu']:.2f} (beam {config.beam_width}), {test['greedy']['bleu']:.2f} (greedy), "
        f"chrF {test['chrf']:.2f}; {baseline['model']} {baseline[names.SPLIT_TEST]['bleu']:.2f}; "
        f"{'BLESSED' if decision['blessed'] else 'NOT BLESSED'} -> {model_dir}",
        flush=True,
    )
    return metrics


def _attention_examples(loaded, translations: list[dict], config) -> list[dict[str, Any]]:
    """Attention of the exported model on a few short-to-medium test sentences (greedy decoding)."""
    import numpy as np
    import tensorflow as tf

    from lstm_model.translation_export import ATTENTION_SIGNATURE

    chosen = [t["source"] for t in translations if 6 <= t["source_tokens"] <= 16][:ATTENTION_EXAMPLES]
    if not chosen:
        chosen = [t["source"] for t in translations[:ATTENTION_EXAMPLES]]
    if not chosen:
        return []
    out = loaded.signatures[ATTENTION_SIGNATURE](
        source=tf.constant(chosen),
        max_length_a=tf.constant(config.max_length_a, tf.float32),
        max_length_b=tf.constant(config.max_length_b, tf.int32),
    )
    examples = []
    for i, source in enumerate(chosen):
        source_pieces = [p.decode("utf-8") for p in out["source_pieces"].numpy()[i] if p]
        target_pieces = [p.decode("utf-8") for p in out["target_pieces"].numpy()[i] if p]
        weights = np.asarray(out["attention"].numpy()[i][: len(target_pieces), : len(source_pieces)])
        examples.append(
            {
                "source": source,
                "translation": out["translation"].numpy()[i].decode("utf-8"),
                "source_pieces": source_pieces,
                "target_pieces": target_pieces,
                "weights": weights.round(4).tolist(),
            }
        )
    return examples


def run(argv: list[str] | None = None) -> dict:
    from lstm_model.config import resolve_config
    from lstm_model.seq2seq import TranslationConfig
    from schemas.cli import UserError, setup_logging

    args = build_parser().parse_args(argv)
    setup_logging()
    logging.getLogger("lstm_model").setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        config = resolve_config(args.config, args, TranslationConfig)
    except (ValueError, OSError) as error:
        raise UserError(f"bad config: {error}") from None
    return train(args.dataset_dir, args.model_dir, config, args)


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from schemas.cli import main_with_user_errors

    sys.exit(main_with_user_errors(run))


if __name__ == "__main__":
    main()
