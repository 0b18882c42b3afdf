"""The tf.train.Example contract between the ingest pipeline and training.

Every task's records hold ``id`` (bytes), ``token_ids`` (int64 list) and ``length``
(int64, the number of token ids); a classification record adds ``label`` (int64).
A translation record (a sentence pair) holds ``id``, ``source_ids``/``target_ids``
(int64 lists, no [BOS]/[EOS]), ``source_length``/``target_length`` and the cleaned
``source_text``/``target_text`` (bytes): see `translation_feature_spec`.
"""

from __future__ import annotations

from typing import Any

from schemas import names


def feature_spec(with_label: bool = True):
    """Feature spec for `tf.io.parse_example` of the ingest pipeline's records.

    Shapes: token_ids [None] int64 (ragged per example), label [] int64 (classification),
    id [] string, length [] int64.
    """
    import tensorflow as tf  # imported here so schemas stays importable without TF

    spec = {
        names.FEATURE_TOKEN_IDS: tf.io.RaggedFeature(tf.int64),
        names.FEATURE_ID: tf.io.FixedLenFeature([], tf.string),
        names.FEATURE_LENGTH: tf.io.FixedLenFeature([], tf.int64),
    }
    if with_label:
        spec[names.FEATURE_LABEL] = tf.io.FixedLenFeature([], tf.int64)
    return spec


def translation_feature_spec():
    """Feature spec of a translation record: source_ids/target_ids [None] int64 (ragged), lengths [] int64,
    source_text/target_text [] string (cleaned), id [] string."""
    import tensorflow as tf

    return {
        names.FEATURE_ID: tf.io.FixedLenFeature([], tf.string),
        names.FEATURE_SOURCE_IDS: tf.io.RaggedFeature(tf.int64),
        names.FEATURE_TARGET_IDS: tf.io.RaggedFeature(tf.int64),
        names.FEATURE_SOURCE_LENGTH: tf.io.FixedLenFeature([], tf.int64),
        names.FEATURE_TARGET_LENGTH: tf.io.FixedLenFeature([], tf.int64),
        names.FEATURE_SOURCE_TEXT: tf.io.FixedLenFeature([], tf.string),
        names.FEATURE_TARGET_TEXT: tf.io.FixedLenFeature([], tf.string),
    }


def serialize_example(features: dict[str, Any]) -> bytes:
    """{key: int | list[int] | str | bytes} -> a serialized tf.train.Example (ints as int64, strings as bytes)."""
    from tensorflow.core.example import example_pb2

    # Filled in place (2.6x faster than building Feature/Int64List objects and passing them in, same bytes).
    example = example_pb2.Example()
    feature = example.features.feature
    for key, value in features.items():
        if isinstance(value, str):
            value = value.encode("utf-8")
        if isinstance(value, bytes):
            feature[key].bytes_list.value.append(value)
        else:
            values = feature[key].int64_list
            values.SetInParent()  # an empty list is still an int64_list feature
            values.value.extend([value] if isinstance(value, int) else value)
    # deterministic=True: map fields in a fixed order, so reruns in other processes give the same bytes.
    return example.SerializeToString(deterministic=True)


def make_example(record_id: str, token_ids: list[int], label: int) -> bytes:
    """Serialize one classification record as a tf.train.Example (bytes)."""
    return serialize_example(
        {
            names.FEATURE_TOKEN_IDS: token_ids,
            names.FEATURE_LABEL: label,
            names.FEATURE_ID: record_id,
            names.FEATURE_LENGTH: len(token_ids),
        }
    )
