"""The tf.train.Example contract between the ingest pipeline and training."""

from __future__ import annotations

from schemas import names


def feature_spec():
    """Feature spec for `tf.io.parse_example` of the ingest pipeline's records.

    Shapes: token_ids [None] int64 (ragged per example), label [] int64,
    id [] string, length [] int64.
    """
    import tensorflow as tf  # imported here so schemas stays importable without TF

    return {
        names.FEATURE_TOKEN_IDS: tf.io.RaggedFeature(tf.int64),
        names.FEATURE_LABEL: tf.io.FixedLenFeature([], tf.int64),
        names.FEATURE_ID: tf.io.FixedLenFeature([], tf.string),
        names.FEATURE_LENGTH: tf.io.FixedLenFeature([], tf.int64),
    }


def make_example(record_id: str, token_ids: list[int], label: int) -> bytes:
    """Serialize one record as a tf.train.Example (bytes)."""
    import tensorflow as tf

    feature = {
        names.FEATURE_TOKEN_IDS: tf.train.Feature(int64_list=tf.train.Int64List(value=token_ids)),
        names.FEATURE_LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        names.FEATURE_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[record_id.encode("utf-8")])),
        names.FEATURE_LENGTH: tf.train.Feature(int64_list=tf.train.Int64List(value=[len(token_ids)])),
    }
    # deterministic=True: map fields in a fixed order, so reruns in other processes give the same bytes.
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)
