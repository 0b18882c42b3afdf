"""The tf.Transform reference for ingest: the same kind of work as a TFX Transform pipeline.

    .venv-tft/bin/python -m bench.tft_ingest --input data/raw/aclImdb --output_dir /tmp/tft \\
        --result_json /tmp/tft.json --direct_num_workers 2 --direct_running_mode multi_processing

Runs in its own virtual environment (``.venv-tft``, made by `bench.tft_ingest setup`,
i.e. ``make bench-tft-env``): tensorflow-transform 1.21 needs absl-py < 2, which the project's pinned
constraints do not allow, so it cannot live in ``.venv``. Nothing of the project is imported
but `bench.plain_ingest` (standard library only at import) for the very same cleaning and
token regex as the plain loop.

The pipeline (Beam, the same local runner flags as ingest):

* list the files, reshuffle them over the workers, read each one and, in a ``beam.Map``,
  clean it and cut it into tokens (`bench.plain_ingest.clean`, ``TOKEN``), carve validation
  out of train by a hash of the id;
* ``tft_beam.AnalyzeDataset`` on train + unsup with ``tft.compute_and_apply_vocabulary``
  (top 29,998 tokens seen at least twice, OOV -> one bucket), then ``TransformDataset``
  on every split: the token ids come out of tf.Transform's own graph;
* ids (+2, so 0 = [PAD] and 1 = [UNK] as in ingest), label, length, id as tf.train.Example
  (tf.Transform's ``ExampleProtoCoder``) -> GZIP TFRecords per split, 10 shards each.

No dedupe, quarantine, row validation or manifest: it is a reference for the cost of the
central work (read, clean, vocabulary, ids, write) in a Beam pipeline with tf.Transform.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

TFT_REQUIREMENTS = ["tensorflow-transform==1.21.0", "apache-beam==2.77.0", "tensorflow==2.21.0"]
RESERVED = 2  # [PAD], [UNK]


def _read_clean(path: str, root: str) -> dict:
    from bench.plain_ingest import LABELS, TOKEN, clean

    relative = path[len(root) + 1 :]
    split, folder, name = relative.split("/")
    with open(path, "rb") as handle:
        text = clean(handle.read().decode("utf-8", errors="replace"))
    record_id = f"{split}/{folder}/{name}"
    if folder == "unsup":
        split = "unsup"
    elif split == "train" and hashlib.sha256(record_id.encode()).digest()[0] < 26:  # ~10 %
        split = "validation"
    return {"id": record_id, "split": split, "label": LABELS[folder], "tokens": TOKEN.findall(text)}


def run(args: argparse.Namespace, beam_args: list[str]) -> dict:
    started = time.perf_counter()
    import apache_beam as beam
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    root = str(Path(args.input).resolve())
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted(str(p) for p in Path(root).glob("*/*/*.txt"))
    top_k = args.vocab_size - RESERVED
    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(
            {
                "id": tf.io.FixedLenFeature([], tf.string),
                "label": tf.io.FixedLenFeature([], tf.int64),
                "tokens": tf.io.VarLenFeature(tf.string),
            }
        )
    )

    def preprocessing_fn(inputs):
        tokens = inputs["tokens"]
        ids = tft.compute_and_apply_vocabulary(
            tokens, top_k=top_k, frequency_threshold=args.min_count, num_oov_buckets=1, vocab_filename="vocab"
        )
        # tf.Transform's ids are 0..top_k-1 and the OOV bucket top_k: shift to ingest's [PAD]=0, [UNK]=1.
        shifted = tf.where(ids.values >= top_k, tf.ones_like(ids.values), ids.values + RESERVED)
        ids = tf.SparseTensor(ids.indices, shifted, ids.dense_shape)
        return {
            "id": inputs["id"],
            "label": inputs["label"],
            "token_ids": ids,
            "length": tf.ensure_shape(tf.sparse.reduce_sum(tf.sparse.map_values(tf.ones_like, ids), axis=1), [None]),
        }

    options = PipelineOptions(beam_args)
    temp_dir = tempfile.mkdtemp(prefix="tft-", dir=str(out))
    splits = ("train", "validation", "test", "unsup")
    with beam.Pipeline(options=options) as pipeline, tft_beam.Context(temp_dir=temp_dir):
        records = (
            pipeline
            | "Paths" >> beam.Create(paths)
            | "Spread" >> beam.Reshuffle()
            | "ReadClean" >> beam.Map(_read_clean, root)
        )
        vocab_side = records | "VocabSide" >> beam.Filter(lambda r: r["split"] in ("train", "unsup"))
        features = records | "Features" >> beam.Map(
            lambda r: ({k: r[k] for k in ("id", "label", "tokens")}, r["split"])
        )
        transform_fn = (
            vocab_side | "VocabFeatures" >> beam.Map(lambda r: {k: r[k] for k in ("id", "label", "tokens")}),
            metadata,
        ) | "Analyze" >> tft_beam.AnalyzeDataset(preprocessing_fn)
        by_split = features | "BySplit" >> beam.Partition(lambda kv, n: splits.index(kv[1]), len(splits))
        for name, part in zip(splits, by_split, strict=True):
            transformed, transformed_metadata = (
                (part | f"Strip[{name}]" >> beam.Map(lambda kv: kv[0]), metadata),
                transform_fn,
            ) | f"Transform[{name}]" >> tft_beam.TransformDataset()
            coder = tft.coders.ExampleProtoCoder(transformed_metadata.schema)
            _ = (
                transformed
                | f"Encode[{name}]" >> beam.Map(coder.encode)
                | f"Write[{name}]"
                >> beam.io.WriteToTFRecord(
                    str(out / name / "data"),
                    file_name_suffix=".tfrecord.gz",
                    num_shards=args.shards,
                    compression_type=beam.io.filesystem.CompressionTypes.GZIP,
                )
            )
        _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(str(out / "transform_fn"))
    shutil.rmtree(temp_dir, ignore_errors=True)
    written = (
        sum(1 for name in splits for p in (out / name).glob("data-*") for _ in tf.data.TFRecordDataset(str(p), "GZIP"))
        if args.count
        else None
    )
    return {"files": len(paths), "records_out": written, "seconds": round(time.perf_counter() - started, 2)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.tft_ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="aclImdb folder.")
    parser.add_argument("--output_dir", required=True, help="Where to write TFRecords and the transform graph.")
    parser.add_argument("--result_json", default=None, help="Where to write counts and seconds.")
    parser.add_argument("--vocab_size", type=int, default=30_000)
    parser.add_argument("--min_count", type=int, default=2)
    parser.add_argument("--shards", type=int, default=10, help="TFRecord shards per split.")
    parser.add_argument("--count", action="store_true", help="Count the written records afterwards (not timed work).")
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args, beam_args = build_parser().parse_known_args(argv)
    result = run(args, beam_args)
    if args.result_json:
        Path(args.result_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.result_json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # tf.Transform 1.21 with TF 2.21 segfaults at interpreter teardown, after all work is done and
    # written: skip the teardown so the exit status says whether the work succeeded.
    os._exit(code)
