"""Token streams and windows for the language model, from a language_model dataset directory.

A split's records (documents, or pieces of one long text) are concatenated in the
order ingest wrote them, each followed by [EOS], into one int32 stream. Training
draws `batch_size` windows of `sequence_length + 1` tokens at random offsets
(nanoGPT's get_batch); the offsets come from a generator seeded by (seed, epoch),
so a resumed run draws the same windows as an uninterrupted one. Validation reads
the whole stream with the LSTM state carried through it (lstm_model.tasks.language_model).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from lstm_model.data import DatasetError, split_files
from schemas import names
from schemas.tfrecord import feature_spec


def token_stream(dataset_dir: str, split: str) -> np.ndarray:
    """[tokens] int32: the split's records concatenated, [EOS] after each."""
    files = split_files(dataset_dir, split)
    spec = {names.FEATURE_TOKEN_IDS: feature_spec(with_label=False)[names.FEATURE_TOKEN_IDS]}
    pieces = []
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024):
        ids = tf.io.parse_example(batch, spec)[names.FEATURE_TOKEN_IDS]  # ragged [records, (tokens)]
        with_eos = tf.concat([ids, tf.fill([ids.nrows(), 1], tf.constant(names.EOS_ID, tf.int64))], axis=1)
        pieces.append(with_eos.flat_values.numpy().astype(np.int32))
    stream = np.concatenate(pieces) if pieces else np.zeros([0], np.int32)
    return stream


def random_windows(stream: np.ndarray, batch_size: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """[batch_size, length + 1] int32 windows at uniformly random offsets of `stream`."""
    if len(stream) < length + 2:
        raise DatasetError(
            f"the training text has {len(stream)} tokens, fewer than one window of {length + 1}; "
            "lower --sequence_length or ingest more text"
        )
    offsets = rng.integers(0, len(stream) - length, size=batch_size)
    return stream[offsets[:, None] + np.arange(length + 1)[None, :]]
