"""tf.data input of a translation dataset (`pipelines.ingest --task translation`): sentence pairs.

Reads only what ingest wrote (manifest, the two vocabularies, TFRecords of
`schemas.tfrecord.translation_feature_spec`). The model adds the special tokens:

  source     [S] int32   the first max_source_length source ids, then [EOS]
  target_in  [T] int32   [BOS], then the first max_target_length target ids   (decoder input, teacher forcing)
  target_out [T] int32   the same target ids, then [EOS]                      (what each position predicts)

Batches are padded per batch with [PAD] (0) and bucketed by length (max of source and target), so
a batch of short captions is not padded to the longest sentence of the corpus.
"""

from __future__ import annotations

import tensorflow as tf

from lstm_model import data
from schemas import names
from schemas.tfrecord import translation_feature_spec

EVALUATION_BATCH = 128


def read_dataset_info(dataset_dir: str) -> tuple[dict, list[str], list[str]]:
    """(manifest, source vocabulary, target vocabulary); DatasetError if it is not a translation dataset."""
    manifest = data.read_manifest(dataset_dir)
    if manifest.get("task") != names.TASK_TRANSLATION:
        raise data.DatasetError(
            f"{dataset_dir} is a {manifest.get('task', 'classification')} dataset; ingest parallel text with "
            "--task translation to train a translation model"
        )
    base = dataset_dir.rstrip("/")
    vocabularies = manifest.get("vocabularies", {})
    source = data.read_vocabulary(f"{base}/{vocabularies.get('source', {}).get('file', names.SOURCE_VOCAB_FILE)}")
    target = data.read_vocabulary(f"{base}/{vocabularies.get('target', {}).get('file', names.TARGET_VOCAB_FILE)}")
    for side, tokens in (("source", source), ("target", target)):
        if tuple(tokens[:4]) != names.GENERATIVE_RESERVED_TOKENS:
            raise data.DatasetError(
                f"the {side} vocabulary of {dataset_dir} does not start with {names.GENERATIVE_RESERVED_TOKENS}"
            )
    return manifest, source, target


def records(dataset_dir: str, split: str, max_source_length: int, max_target_length: int) -> tf.data.Dataset:
    """One dict per pair: source, target_in, target_out (int32, see the module docstring), source_tokens (int32,
    kept source tokens without [EOS]), id, source_text, target_text (strings)."""
    spec = translation_feature_spec()
    dataset = tf.data.TFRecordDataset(data.split_files(dataset_dir, split), compression_type="GZIP")

    def parse(serialized):
        features = tf.io.parse_single_example(serialized, spec)
        source = tf.cast(features[names.FEATURE_SOURCE_IDS][:max_source_length], tf.int32)
        target = tf.cast(features[names.FEATURE_TARGET_IDS][:max_target_length], tf.int32)
        return {
            "source": tf.concat([source, [names.EOS_ID]], 0),
            "target_in": tf.concat([[names.BOS_ID], target], 0),
            "target_out": tf.concat([target, [names.EOS_ID]], 0),
            "source_tokens": tf.shape(source)[0],
            "id": features[names.FEATURE_ID],
            "source_text": features[names.FEATURE_SOURCE_TEXT],
            "target_text": features[names.FEATURE_TARGET_TEXT],
        }

    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _bucketed(dataset: tf.data.Dataset, batch_size: int, bucket_width: int, longest: int) -> tf.data.Dataset:
    boundaries = list(range(bucket_width + 1, longest + 2, bucket_width))
    return dataset.bucket_by_sequence_length(
        element_length_func=lambda r: tf.maximum(tf.shape(r["source"])[0], tf.shape(r["target_in"])[0]),
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        pad_to_bucket_boundary=False,
    )


def training_dataset(dataset_dir: str, config, seed_offset: int = 0) -> tf.data.Dataset:
    """Shuffled, bucketed (source, target_in, target_out) batches of the train split (one pass), cached in memory.

    The order depends on (config.seed, seed_offset) only: pass the epoch, and a resumed run sees what an
    uninterrupted one would have.
    """
    dataset = records(dataset_dir, names.SPLIT_TRAIN, config.max_source_length, config.max_target_length)
    dataset = dataset.map(lambda r: {k: r[k] for k in ("source", "target_in", "target_out")}).cache()
    dataset = dataset.shuffle(config.shuffle_buffer, seed=config.seed + seed_offset, reshuffle_each_iteration=False)
    longest = max(config.max_source_length, config.max_target_length)
    dataset = _bucketed(dataset, config.batch_size, config.bucket_width, longest)
    return dataset.map(lambda r: (r["source"], r["target_in"], r["target_out"])).prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(dataset_dir: str, split: str, config, limit: int = 0) -> tf.data.Dataset:
    """Bucketed batches (dicts as `records`) of the first `limit` pairs of a split (0: all), in a fixed order."""
    dataset = records(dataset_dir, split, config.max_source_length, config.max_target_length)
    if limit:
        dataset = dataset.take(limit)
    longest = max(config.max_source_length, config.max_target_length)
    return _bucketed(dataset, EVALUATION_BATCH, config.bucket_width, longest).cache().prefetch(tf.data.AUTOTUNE)


def texts(dataset_dir: str, split: str) -> tuple[list[str], list[str], list[list[int]], list[list[int]]]:
    """(source_texts, target_texts, source_ids, target_ids) of a split, in file order (for the baseline)."""
    spec = translation_feature_spec()
    sources, targets, source_ids, target_ids = [], [], [], []
    dataset = tf.data.TFRecordDataset(data.split_files(dataset_dir, split), compression_type="GZIP").batch(4096)
    for batch in dataset:
        parsed = tf.io.parse_example(batch, spec)
        sources += [value.decode("utf-8") for value in parsed[names.FEATURE_SOURCE_TEXT].numpy()]
        targets += [value.decode("utf-8") for value in parsed[names.FEATURE_TARGET_TEXT].numpy()]
        source_ids += parsed[names.FEATURE_SOURCE_IDS].to_list()
        target_ids += parsed[names.FEATURE_TARGET_IDS].to_list()
    return sources, targets, source_ids, target_ids
