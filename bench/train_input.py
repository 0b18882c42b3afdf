"""Training input benchmark: the real tf.data TFRecord input vs the same batches from memory.

    python -m bench.train_input --dataset_dir DIR --result_json FILE [--steps 60] [--warmup 5] [--repeats 2]

One model (`lstm_model.model`, the given TrainConfig) is trained with ``model.fit``
on two inputs that yield *the same batches in the same order*:

* ``tfrecord``: `lstm_model.data.training_dataset` -- GZIP TFRecords, parse,
  truncate, cache, shuffle, length-bucketed padded batches, prefetch -- built fresh
  for every repeat, so each repeat reads the files again;
* ``memory``: those batches taken once from the same input, stacked into padded
  tensors in memory, and sliced back to each batch's own shape by a
  ``from_tensor_slices`` dataset.

Same batches means the same shapes, so the model does the same work per step and
the difference is what the input costs (CPU the input threads take from the model,
stalls). Steps per second are timed by a Keras callback over `--steps` steps after
`--warmup` steps (tracing, first batch), both arms per repeat in ABBA order, `--repeats` times;
the reported ratio is the median of the per-repeat ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


def _step_timer():
    import keras

    class StepTimer(keras.callbacks.Callback):
        """Wall-clock time (s, perf_counter) at the end of every training batch."""

        def on_train_begin(self, logs=None):
            self.started = time.perf_counter()
            self.ends: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    return StepTimer()


def memory_dataset(batches):
    """A dataset yielding `batches` [(ids [b, t] int32, label [b] float32)] from tensors in memory."""
    import tensorflow as tf

    sizes = [int(ids.shape[0]) for ids, _ in batches]
    widths = [int(ids.shape[1]) for ids, _ in batches]
    rows, time_steps = max(sizes), max(widths)
    ids = tf.stack([tf.pad(x, [[0, rows - x.shape[0]], [0, time_steps - x.shape[1]]]) for x, _ in batches])
    labels = tf.stack([tf.pad(y, [[0, rows - y.shape[0]]]) for _, y in batches])
    dataset = tf.data.Dataset.from_tensor_slices((ids, labels, tf.constant(sizes), tf.constant(widths)))
    dataset = dataset.map(lambda x, y, size, width: (x[:size, :width], y[:size]))
    return dataset.prefetch(tf.data.AUTOTUNE)


def run_benchmark(dataset_dir: str, config, steps: int, warmup: int, repeats: int) -> dict:
    import keras

    from lstm_model import data
    from lstm_model.model import build_classifier, compile_classifier
    from schemas import names

    vocabulary = data.read_vocabulary(f"{dataset_dir.rstrip('/')}/{names.VOCAB_FILE}")
    keras.utils.set_random_seed(config.seed)
    total = warmup + steps

    def tfrecord_input():
        return data.training_dataset(dataset_dir, config).repeat()

    started = time.perf_counter()
    batches = list(tfrecord_input().take(total))
    materialise_s = time.perf_counter() - started
    model = compile_classifier(build_classifier(config, len(vocabulary)), config)
    arms = {"tfrecord": tfrecord_input, "memory": lambda: memory_dataset(batches)}
    runs: dict[str, list[dict]] = {name: [] for name in arms}
    # One untimed pass over all the batches first: Keras traces its train step again for the first
    # few new shapes, and that tracing must not land in the first measured run.
    model.fit(memory_dataset(batches), epochs=1, steps_per_epoch=total, verbose=0)
    for repeat in range(repeats):
        # ABBA order (tfrecord first in even repeats, memory first in odd ones) cancels order effects.
        for name in list(arms) if repeat % 2 == 0 else list(arms)[::-1]:
            make_input = arms[name]
            timer = _step_timer()
            model.fit(make_input(), epochs=1, steps_per_epoch=total, verbose=0, callbacks=[timer])
            ends = timer.ends
            measured = ends[-1] - ends[warmup - 1]
            runs[name].append(
                {
                    "steps_per_s": round(steps / measured, 3),
                    "first_step_s": round(ends[0] - timer.started, 2),
                    "measured_s": round(measured, 2),
                }
            )
    # Median over repeats (robust to one disturbed repeat on a shared machine).
    summary = {
        name: {"steps_per_s": round(statistics.median(r["steps_per_s"] for r in results), 3), "runs": results}
        for name, results in runs.items()
    }
    # Each repeat runs both arms back to back: the ratio within a repeat cancels slow drifts in
    # the machine's background load; the figure is the median of those paired ratios.
    paired = [t["steps_per_s"] / m["steps_per_s"] for t, m in zip(runs["tfrecord"], runs["memory"], strict=True)]
    tokens = sum(int(ids.shape[0]) * int(ids.shape[1]) for ids, _ in batches[warmup:])
    return {
        "steps": steps,
        "warmup_steps": warmup,
        "repeats": repeats,
        "batch_size": config.batch_size,
        "padded_tokens_per_step": round(tokens / steps, 1),
        "materialise_s": round(materialise_s, 2),
        "paired_ratios": [round(r, 4) for r in paired],
        "ratio": round(statistics.median(paired), 4),
        "config": config.to_dict(),
        **summary,
    }


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from lstm_model.config import add_config_flags, resolve_config

    parser = argparse.ArgumentParser(prog="python -m bench.train_input", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset_dir", required=True, help="An ingested dataset directory.")
    parser.add_argument("--result_json", required=True, help="Where to write the figures.")
    parser.add_argument("--steps", type=int, default=60, help="Timed steps per run (default: %(default)s).")
    parser.add_argument(
        "--warmup", type=int, default=5, help="Untimed steps per run before timing (default: %(default)s)."
    )
    parser.add_argument("--repeats", type=int, default=2, help="Runs per arm, alternating (default: %(default)s).")
    add_config_flags(parser)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 1 or args.repeats < 1:
        parser.error("--steps, --warmup and --repeats must be >= 1")
    config = resolve_config(None, args)
    result = run_benchmark(args.dataset_dir, config, args.steps, args.warmup, args.repeats)
    Path(args.result_json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.result_json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps({name: result[name]["steps_per_s"] for name in ("tfrecord", "memory")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
