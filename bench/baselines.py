"""Plain single-process baselines the pipelines are measured against.

    python -m bench.baselines ingest-loop --input DIR --output_dir DIR --result_json FILE
    python -m bench.baselines score-loop --input DIR --model_dir DIR --result_json FILE

Both do the same work as their pipeline with the project's own code, minus Beam:

* ``ingest-loop`` reads the aclImdb layout with `pipelines.sources.ReadFileRecords`
  (so the same sha256 per input file), checks rows with
  `pipelines.transforms.check_raw_record`, cleans with
  `textprep.preprocessing.clean_batch`, drops duplicates with the pipeline's own
  keep-first rules, splits with `assign_split`, counts tokens with
  `count_tokens_batch`, picks the vocabulary with `top_k_vocabulary`, looks ids up with
  `CompiledLookup`, serializes with `schemas.tfrecord.make_example` (through the
  pipeline's `pipelines.tasks.classification.TASK.example`, for the same shard order keys) and writes
  sharded, sorted GZIP TFRecords, quarantine, vocabulary, input list and a manifest
  with checksums. TF calls are on batches of `transforms.MAX_BATCH` texts, like
  the pipeline's. It holds the corpus in memory (a plain loop has nowhere else to
  put it between the vocabulary pass and the id pass).
* ``score-loop`` reads the same texts into memory, loads the exported model, and
  times only the loop that calls the serving signature on batches of
  `--batch_size` texts in corpus order: one call per batch with `--no_bucketing`
  (the bare loop of the goal), else cut into length-sorted calls of
  `--bucket_size` texts the way `pipelines.score.RawTextModelHandler` cuts them
  (the same model calls as the pipeline: what is left is Beam's cost).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path


def _write_json(path: str, payload: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _read_aclimdb(input_dir: str):
    """Yields ("record", RawRecord) | ("quarantine", QuarantineRecord) | ("input", (path, sha256, bytes))."""
    from apache_beam.pvalue import TaggedOutput

    from pipelines import sources
    from pipelines.common import INPUTS_TAG

    pattern = sources.resolve_input_pattern(input_dir, "aclimdb")
    reader = sources.ReadFileRecords("aclimdb", input_dir, sources.ColumnNames())
    for entry in sources.list_inputs(pattern):
        if isinstance(entry, dict):  # a listed path that is not a readable file
            yield "quarantine", entry
            continue
        for output in reader.process(entry):
            if isinstance(output, TaggedOutput):
                yield ("input" if output.tag == INPUTS_TAG else "quarantine"), output.value
            else:
                yield "record", output


def ingest_loop(args: argparse.Namespace) -> dict:
    """The ingest pipeline's work as one Python loop; returns counts and timings (seconds)."""
    import tensorflow as tf

    from pipelines import common, transforms
    from pipelines.tasks.classification import TASK as CLASSIFICATION
    from schemas import names, reasons
    from textprep import preprocessing

    started = time.perf_counter()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    batch_size = transforms.MAX_BATCH
    quarantined: list[dict] = []
    inputs: list[tuple[str, str, int]] = []
    cleaned: list[dict] = []
    pending: list[dict] = []
    records_in = 0

    def clean_pending() -> None:
        texts = preprocessing.clean_batch([record["text"] for record in pending], args.lowercase)
        for record, text in zip(pending, texts, strict=True):
            if text:
                cleaned.append({**record, "text": text})
            else:
                quarantined.append(
                    common.quarantine(
                        record, "clean", reasons.EMPTY_AFTER_CLEANING, "nothing left after removing markup"
                    )
                )
        pending.clear()

    # 1. read, check, clean (batches of MAX_BATCH texts)
    for kind, value in _read_aclimdb(args.input):
        if kind == "input":
            inputs.append(value)
            continue
        records_in += 1
        if kind == "quarantine":
            quarantined.append(value)
            continue
        checked, failure = transforms.check_raw_record(value, args.max_chars, True, args.encoding)
        if failure:
            quarantined.append(common.quarantine(value, "check", *failure))
            continue
        pending.append(checked)
        if len(pending) >= batch_size:
            clean_pending()
    clean_pending()
    stage_s = {"read_check_clean": time.perf_counter() - started}  # seconds per stage
    mark = time.perf_counter()

    # 2. duplicates (the pipeline's keep-first rules on the same small keys), then splits
    def group(items, key):
        groups: dict = collections.defaultdict(list)
        for item in items:
            groups[key(item)].append(item)
        return groups.items()

    drops, kept_keys = {}, []
    for item in group(map(transforms.dedupe_key, cleaned), lambda k: k[0]):
        for output in transforms.keep_first_of_id(item):
            if hasattr(output, "tag"):
                drops.update([output.value])
            else:
                kept_keys.append(output)
    for item in group(kept_keys, lambda k: k[3]):
        drops.update(transforms.keep_first_of_text(item))
    unique = []
    for record in cleaned:
        for output in transforms.DropDoFn().process(record, drops):
            if hasattr(output, "tag"):
                quarantined.append(output.value)
            else:
                unique.append(output)
    cleaned.clear()  # the kept records live on in `unique`
    records = [transforms.assign_split(r, args.validation_fraction, args.test_fraction) for r in unique]
    del unique

    stage_s["dedupe_split"], mark = time.perf_counter() - mark, time.perf_counter()

    # 3. vocabulary from the training side (token counts per batch, merged)
    counts: collections.Counter = collections.Counter()
    vocab_side = [r["text"] for r in records if r["split"] in (names.SPLIT_TRAIN, names.SPLIT_UNSUP)]
    for start in range(0, len(vocab_side), batch_size):
        counts.update(preprocessing.count_tokens_batch(vocab_side[start : start + batch_size], args.lowercase))
    vocabulary = transforms.top_k_vocabulary(counts, args.vocab_size, args.min_count)
    (out / names.VOCAB_FILE).write_text("".join(f"{token}\t{count}\n" for token, count in vocabulary), encoding="utf-8")

    stage_s["vocabulary"], mark = time.perf_counter() - mark, time.perf_counter()

    # 4. token ids, tf.train.Example, sharded sorted GZIP TFRecords per split
    lookup = preprocessing.CompiledLookup([token for token, _ in vocabulary], args.lowercase)
    stats_fn = transforms.DatasetStatsFn()
    stats = stats_fn.create_accumulator()
    examples: dict[str, list[tuple[str, bytes]]] = {split: [] for split in names.SPLITS}
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        for record, token_ids in zip(batch, lookup([r["text"] for r in batch]), strict=True):
            record = {**record, "token_ids": token_ids}
            stats = stats_fn.add_input(stats, record)
            # (sha256-prefix-of-id order key, make_example bytes): the pipeline's own function.
            examples[record["split"]].append(CLASSIFICATION.example(record))
    written = []
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    for split, payloads in examples.items():
        if not payloads:
            continue
        num_shards = max(1, -(-len(payloads) // args.records_per_shard))
        shards: dict[int, list[tuple[str, bytes]]] = collections.defaultdict(list)
        for order, payload in payloads:
            shards[common.stable_bucket(order, num_shards)].append((order, payload))
        (out / split).mkdir(exist_ok=True)
        for shard in range(num_shards):
            path = out / split / f"data-{shard:05d}-of-{num_shards:05d}{names.TFRECORD_SUFFIX}"
            with tf.io.TFRecordWriter(str(path), options) as writer:
                for _, payload in sorted(shards.get(shard, [])):
                    writer.write(payload)
            written.append((str(path), len(shards.get(shard, []))))

    stage_s["ids_examples_write"], mark = time.perf_counter() - mark, time.perf_counter()

    # 5. quarantine, input list, manifest with checksums
    (out / names.QUARANTINE_DIR).mkdir(exist_ok=True)
    quarantine_path = out / names.QUARANTINE_DIR / "part-00000-of-00001.jsonl"
    ordered = sorted(quarantined, key=lambda q: f"{q['id']}\x00{q['reason']}\x00{q['source']}")
    quarantine_path.write_text(
        "".join(json.dumps(q, ensure_ascii=False, sort_keys=True) + "\n" for q in ordered), encoding="utf-8"
    )
    (out / names.INPUTS_FILE).write_text(
        "".join(f"{p}\t{sha}\t{size}\n" for p, sha, size in sorted(inputs)), encoding="utf-8"
    )
    written += [(str(quarantine_path), len(ordered)), (str(out / names.VOCAB_FILE), len(vocabulary))]
    written.append((str(out / names.INPUTS_FILE), len(inputs)))
    split_stats = stats_fn.extract_output(stats)
    manifest = {
        "kind": "dataset (bench baseline)",
        "counts": {
            "input_files": len(inputs),
            "records_in": records_in,
            "records_out": sum(s["records"] for s in split_stats.values()),
            "quarantined": len(quarantined),
        },
        "splits": split_stats,
        "vocabulary": {"size": len(vocabulary)},
        "outputs": common.describe_outputs(str(out), written),
    }
    (out / names.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return {
        "records_in": records_in,
        "records_out": manifest["counts"]["records_out"],
        "quarantined": len(quarantined),
        "vocabulary_size": len(vocabulary),
        "stage_s": {
            name: round(seconds, 2)
            for name, seconds in {**stage_s, "side_files_manifest": time.perf_counter() - mark}.items()
        },
        "loop_s": round(time.perf_counter() - started, 2),
    }


def score_loop(args: argparse.Namespace) -> dict:
    """Bare loop over the exported serving signature; returns documents/s of the timed loop."""
    import tensorflow as tf

    from lstm_model.export import load_exported
    from pipelines import transforms
    from pipelines.inference import length_sorted_calls
    from schemas import names

    texts = []
    for kind, value in _read_aclimdb(args.input):
        if kind == "record":
            checked, failure = transforms.check_raw_record(value, args.max_chars, False, args.encoding, False)
            if not failure:
                texts.append(checked["text"])
    load_started = time.perf_counter()
    model = load_exported(str(Path(args.model_dir) / names.MODEL_EXPORT_DIR)).signatures[names.SERVING_SIGNATURE]
    bucket_size = None if args.no_bucketing else args.bucket_size
    # Warm-up call (graph initialisation), not timed.
    model(text=tf.constant(texts[: min(len(texts), 8)]))
    load_s = time.perf_counter() - load_started
    started = time.perf_counter()
    scored = 0
    for start in range(0, len(texts), args.batch_size):
        batch = texts[start : start + args.batch_size]
        for rows in length_sorted_calls(batch, bucket_size or 0):  # the pipeline's own calls
            outputs = model(text=tf.constant([batch[i] for i in rows]))
            scored += len(outputs["probability"].numpy())
    loop_s = time.perf_counter() - started
    return {
        "documents": scored,
        "loop_s": round(loop_s, 2),
        "load_s": round(load_s, 2),
        "documents_per_s": round(scored / loop_s, 1) if loop_s > 0 else None,
        "batch_size": args.batch_size,
        "bucket_size": bucket_size,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser("ingest-loop", help="The ingest pipeline's work as one single-process Python loop.")
    ingest.add_argument("--input", required=True, help="aclImdb folder.")
    ingest.add_argument("--output_dir", required=True, help="Where the loop writes its dataset.")
    ingest.add_argument("--result_json", required=True, help="Where to write counts and timings.")
    ingest.add_argument("--no_lowercase", dest="lowercase", action="store_false")
    ingest.add_argument("--max_chars", type=int, default=100_000)
    ingest.add_argument("--encoding", default="utf-8")
    ingest.add_argument("--validation_fraction", type=float, default=0.1)
    ingest.add_argument("--test_fraction", type=float, default=0.2)
    ingest.add_argument("--vocab_size", type=int, default=30_000)
    ingest.add_argument("--min_count", type=int, default=2)
    ingest.add_argument("--records_per_shard", type=int, default=10_000)
    score = commands.add_parser("score-loop", help="The exported model called on in-memory batches.")
    score.add_argument("--input", required=True, help="aclImdb folder.")
    score.add_argument("--model_dir", required=True, help="Trained model directory.")
    score.add_argument("--result_json", required=True, help="Where to write documents/s.")
    score.add_argument("--batch_size", type=int, default=1024, help="Texts per batch (the pipeline's --batch_size).")
    score.add_argument(
        "--bucket_size", type=int, default=64, help="Texts per length-sorted model call (the pipeline's)."
    )
    score.add_argument(
        "--no_bucketing", action="store_true", help="One model call per batch, in corpus order (the bare loop)."
    )
    score.add_argument("--max_chars", type=int, default=100_000)
    score.add_argument("--encoding", default="utf-8")
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    result = ingest_loop(args) if args.command == "ingest-loop" else score_loop(args)
    _write_json(args.result_json, result)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
