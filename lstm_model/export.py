"""Export: one SavedModel that takes raw text strings.

Signatures of ``MODEL_DIR/export``:

* ``serving_default(text: string [batch])`` -> ``probability`` float32 [batch]
  (P(label == LABELS[1])), ``label_id`` int32 [batch], ``num_tokens`` int32 [batch]
  (tokens after cleaning, before truncation), ``num_oov`` int32 [batch] (of those,
  out of the vocabulary);
* ``preprocess(text: string [batch])`` -> ``token_ids`` int64 [batch, time] (untruncated,
  0-padded) and ``num_tokens`` int32 [batch]: exactly the ids ingest writes.

Cleaning, tokenization, lookup and truncation inside it are the ones training
used (`textprep.preprocessing`), so scoring cannot drift from training.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from lstm_model.config import TrainConfig
from schemas import names
from textprep.preprocessing import TextPreprocessor, TextSpec, as_spec, truncate_ids

TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")


def export_model(
    model: keras.Model, vocabulary: list[str], config: TrainConfig, spec: TextSpec | bool, export_dir: str
) -> None:
    """Write the raw-text SavedModel for `model` to `export_dir`."""
    if len(vocabulary) != model.get_layer("embedding").input_dim:
        raise ValueError(
            f"vocabulary has {len(vocabulary)} tokens but the model's embedding has "
            f"{model.get_layer('embedding').input_dim} rows"
        )
    preprocessor = TextPreprocessor(vocabulary, spec=as_spec(spec))
    max_tokens, truncate = config.max_tokens, config.truncate

    def preprocess(text):
        ids = preprocessor.ids(text)  # [batch, (tokens)] int64
        return {
            "token_ids": ids.to_tensor(default_value=names.PAD_ID),
            "num_tokens": tf.cast(ids.row_lengths(), tf.int32),
        }

    def serve(text):
        ids = preprocessor.ids(text)
        num_tokens = tf.cast(ids.row_lengths(), tf.int32)
        dense = tf.cast(truncate_ids(ids, max_tokens, truncate).to_tensor(default_value=names.PAD_ID), tf.int32)
        # At least one time step, so a batch of empty texts still runs (all masked).
        dense = tf.pad(dense, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(dense)[1])]])
        probability = tf.reshape(model(dense, training=False), [-1])
        return {
            "probability": probability,
            "label_id": tf.cast(probability >= 0.5, tf.int32),
            "num_tokens": num_tokens,
            "num_oov": tf.cast(tf.reduce_sum(tf.cast(ids == names.OOV_ID, tf.int32), axis=1), tf.int32),
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(preprocessor)
    archive.add_endpoint(names.SERVING_SIGNATURE, serve, input_signature=[TEXT_SPEC])
    archive.add_endpoint(names.PREPROCESS_SIGNATURE, preprocess, input_signature=[TEXT_SPEC])
    archive.write_out(export_dir, verbose=False)


def load_exported(export_dir: str):
    """Load the SavedModel; its signatures are `.signatures['serving_default']` and `['preprocess']`."""
    import tensorflow_text  # noqa: F401 -- registers the tokenizer ops the graph uses

    return tf.saved_model.load(export_dir)


def model_version(prefix: str, config_json: str, dataset_fingerprint: str, weights) -> str:
    """PREFIX + 12 hex digits of sha256(config, dataset fingerprint, weights): changes with any of them."""
    import hashlib

    digest = hashlib.sha256(config_json.encode() + dataset_fingerprint.encode())
    for array in weights:
        digest.update(array.tobytes())
    return prefix + digest.hexdigest()[:12]
