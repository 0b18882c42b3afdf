"""tf.data input from the ingest pipeline's dataset directory.

Reads only what ingest decided (manifest, vocabulary, TFRecords); re-derives
nothing. Batches are padded per batch and bucketed by length, so a batch of
short reviews is not padded to the longest review in the corpus.

Element shapes: training/validation batches are (token_ids [batch, time] int32,
label [batch] float32); evaluation batches add id [batch] string.
"""

from __future__ import annotations

import tensorflow as tf

from lstm_model.config import TrainConfig
from schemas import names
from schemas.tfrecord import feature_spec
from textprep.preprocessing import truncate_ids


class DatasetError(ValueError):
    """The dataset directory is missing or incomplete (message says what to run)."""


def read_manifest(dataset_dir: str) -> dict:
    import json

    path = f"{dataset_dir.rstrip('/')}/{names.MANIFEST_FILE}"
    if not tf.io.gfile.exists(path):
        raise DatasetError(f"no {names.MANIFEST_FILE} in {dataset_dir}; run the ingest pipeline first (make ingest)")
    with tf.io.gfile.GFile(path, "r") as handle:
        return json.load(handle)


def _vocabulary_rows(path: str) -> list[tuple[str, int]]:
    """The (token, count) rows of a vocabulary file, in id order (textprep.vocabulary's format)."""
    from textprep.vocabulary import VocabularyError, parse_vocabulary

    if not tf.io.gfile.exists(path):
        raise DatasetError(f"vocabulary file {path} not found")
    with tf.io.gfile.GFile(path, "rb") as handle:
        text = handle.read().decode("utf-8", errors="replace")
    try:
        return parse_vocabulary(text, path)
    except VocabularyError as error:
        raise DatasetError(str(error)) from None


def read_vocabulary(path: str) -> list[str]:
    """Tokens in id order from a `token<TAB>count` file."""
    return [token for token, _ in _vocabulary_rows(path)]


def read_token_counts(path: str) -> list[int]:
    """Training-side token counts in id order; reserved tokens (and any count of 0) get 1, never 0."""
    return [max(1, count) for _, count in _vocabulary_rows(path)]


def split_files(dataset_dir: str, split: str) -> list[str]:
    files = sorted(tf.io.gfile.glob(f"{dataset_dir.rstrip('/')}/{split}/*{names.TFRECORD_SUFFIX}"))
    if not files:
        raise DatasetError(f"no {split} TFRecords in {dataset_dir}/{split}; is the split empty? (see manifest.json)")
    return files


def _parse(serialized):
    features = tf.io.parse_single_example(serialized, feature_spec())
    return features[names.FEATURE_TOKEN_IDS], features[names.FEATURE_LABEL], features[names.FEATURE_ID]


def _records(files: list[str], config: TrainConfig) -> tf.data.Dataset:
    """(token_ids [time] int32 truncated, label [] float32, id [] string) per example."""
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    dataset = dataset.map(_parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def truncate(ids, label, record_id):
        ids = truncate_ids(ids, config.max_tokens, config.truncate)
        return tf.cast(ids, tf.int32), tf.cast(label, tf.float32), record_id

    return dataset.map(truncate, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _bucketed(dataset: tf.data.Dataset, config: TrainConfig) -> tf.data.Dataset:
    boundaries = list(range(config.bucket_width, config.max_tokens + 1, config.bucket_width))
    return dataset.bucket_by_sequence_length(
        element_length_func=lambda ids, *_: tf.shape(ids)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[config.batch_size] * (len(boundaries) + 1),
        padded_shapes=([None], [], []),
        padding_values=(tf.constant(names.PAD_ID, tf.int32), 0.0, b""),
    )


def training_subset_ids(dataset_dir: str, max_examples: int, seed: int) -> list[str] | None:
    """Ids of the `max_examples` training records kept when training on fewer labels (None = all).

    The records with the smallest sha256 of "seed:id": a random subset (labels in their
    corpus proportions, in expectation) that depends only on the ids and the seed, not on
    a random number generator, so training and the baseline (`lstm_model.baseline`) use the
    very same records on every run and machine.
    """
    import hashlib

    if not max_examples:
        return None
    files = split_files(dataset_dir, names.SPLIT_TRAIN)
    spec = {names.FEATURE_ID: feature_spec()[names.FEATURE_ID]}
    ids = []
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096):
        ids.extend(value.decode("utf-8") for value in tf.io.parse_example(batch, spec)[names.FEATURE_ID].numpy())
    ranked = sorted(ids, key=lambda record_id: hashlib.sha256(f"{seed}:{record_id}".encode()).digest())
    return sorted(ranked[:max_examples])


def training_dataset(dataset_dir: str, config: TrainConfig) -> tf.data.Dataset:
    """Shuffled, length-bucketed (token_ids, label) batches of the train split, cached in memory."""
    dataset = _records(split_files(dataset_dir, names.SPLIT_TRAIN), config)
    subset = training_subset_ids(dataset_dir, config.max_train_examples, config.seed)
    if subset is not None:
        keep = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(subset), tf.ones(len(subset), tf.int32)), default_value=0
        )
        dataset = dataset.filter(lambda ids, label, record_id: keep.lookup(record_id) > 0)
    dataset = dataset.cache().shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
    dataset = _bucketed(dataset, config).map(lambda ids, label, _: (ids, label))
    return dataset.prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(dataset_dir: str, split: str, config: TrainConfig, with_ids: bool = False) -> tf.data.Dataset:
    """Length-bucketed batches of a split, in a fixed order; (ids, label[, id])."""
    dataset = _bucketed(_records(split_files(dataset_dir, split), config), config)
    if not with_ids:
        dataset = dataset.map(lambda ids, label, _: (ids, label))
    return dataset.cache().prefetch(tf.data.AUTOTUNE)
