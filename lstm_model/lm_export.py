"""Export of a language model: one SavedModel, raw strings in, with the preprocessing inside.

Signatures of ``MODEL_DIR/export``:

* ``generate(prompt: string [batch], seed: int64 [batch], max_new_tokens: int32 [], temperature: float32 [],
  top_k: int32 [], top_p: float32 [], stop: string [])`` -> ``text`` string [batch] (the continuation, without
  the prompt, cut before the first `stop` string if one is given), ``num_tokens`` int32 [batch] (tokens
  generated, [EOS] excluded), ``log_prob`` float32 [batch] (natural log, of the tokens generated under the
  model's own softmax), ``prompt_tokens`` int32 [batch], ``prompt_oov`` int32 [batch].
  top_k = 0 and top_p = 1 switch those filters off; top_k = 1 is greedy decoding. A row's output depends
  only on its prompt, its seed and the settings, not on the other rows of the batch. Generation stops at
  [EOS] or after max_new_tokens.
* ``log_likelihood(text: string [batch])`` -> ``total_nats`` float32, ``nats_per_token`` float32,
  ``bits_per_char`` float32, ``num_tokens`` int32, ``num_chars`` int32 (after cleaning), ``num_oov`` int32:
  how likely the model finds each text, every token predicted from the ones before it, the first from [EOS]
  (the model reads [EOS] before every document in training).
* ``preprocess(text: string [batch])`` -> ``token_ids`` int64 [batch, time] (0-padded), ``num_tokens``
  int32 [batch]: exactly the ids ingest writes.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from lstm_model import sampling
from lstm_model.causal_lm import CausalLM
from schemas import names
from textprep.preprocessing import TextPreprocessor, TextSpec

TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
GENERATE_SPECS = [
    tf.TensorSpec([None], tf.string, name="prompt"),
    tf.TensorSpec([None], tf.int64, name="seed"),
    tf.TensorSpec([], tf.int32, name="max_new_tokens"),
    tf.TensorSpec([], tf.float32, name="temperature"),
    tf.TensorSpec([], tf.int32, name="top_k"),
    tf.TensorSpec([], tf.float32, name="top_p"),
    tf.TensorSpec([], tf.string, name="stop"),
]


def _with_eos_first(ids: tf.RaggedTensor) -> tf.RaggedTensor:
    """[batch, (tokens)] -> [batch, 1 + (tokens)] with [EOS] in front (what the model reads before a document)."""
    eos = tf.fill([ids.nrows(), 1], tf.constant(names.EOS_ID, ids.dtype))
    return tf.concat([eos, ids], axis=1)


def cut_at_stop(texts: tf.Tensor, stop: tf.Tensor) -> tf.Tensor:
    """[batch] strings cut before the first occurrence of `stop` (a scalar; "" cuts nothing)."""

    def cut():
        return tf.strings.split(texts, sep=stop, maxsplit=1).to_tensor(default_value="")[:, 0]

    return tf.cond(tf.strings.length(stop) > 0, cut, lambda: texts)


def export_language_model(lm: CausalLM, vocabulary: list[str], spec: TextSpec, export_dir: str) -> None:
    """Write the raw-text SavedModel of `lm` (weights as they are now) to `export_dir`."""
    if len(vocabulary) != lm.vocabulary_size:
        raise ValueError(f"vocabulary has {len(vocabulary)} tokens but the model has {lm.vocabulary_size}")
    preprocessor = TextPreprocessor(vocabulary, spec=spec)

    def preprocess(text):
        ids = preprocessor.ids(text)  # [batch, (tokens)] int64
        return {
            "token_ids": ids.to_tensor(default_value=names.PAD_ID),
            "num_tokens": tf.cast(ids.row_lengths(), tf.int32),
        }

    def generate(prompt, seed, max_new_tokens, temperature, top_k, top_p, stop):
        tf.debugging.assert_positive(temperature, message="temperature must be > 0")
        tf.debugging.assert_greater(top_p, 0.0, message="top_p must be in (0, 1]")
        tf.debugging.assert_less_equal(top_p, 1.0, message="top_p must be in (0, 1]")
        tf.debugging.assert_non_negative(top_k, message="top_k must be >= 0")
        ids = preprocessor.ids(prompt)  # [batch, (tokens)]
        prompt_tokens = tf.cast(ids.row_lengths(), tf.int32)
        # An empty prompt starts the text from [EOS], the model's "a document begins" context.
        ids = _with_eos_first(ids)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        dense = tf.cast(ids.to_tensor(default_value=names.PAD_ID), tf.int32)
        state, last = lm.prompt_state(dense, lengths)
        out = sampling.generate(
            lm.step,
            state,
            last,
            max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            stop_ids=[names.EOS_ID],
        )
        generated = tf.RaggedTensor.from_tensor(out["token_ids"], lengths=out["num_tokens"])
        return {
            "text": cut_at_stop(preprocessor.detokenize(generated), stop),
            "num_tokens": out["num_tokens"],
            "log_prob": out["log_prob"],
            "prompt_tokens": prompt_tokens,
            "prompt_oov": tf.reduce_sum(tf.cast(ids == names.OOV_ID, tf.int32), axis=1),
        }

    def log_likelihood(text):
        cleaned = preprocessor.clean(text)
        ids = preprocessor.lookup(preprocessor.tokenize(cleaned))  # [batch, (tokens)]
        num_tokens = tf.cast(ids.row_lengths(), tf.int32)
        with_eos = _with_eos_first(ids)
        dense = tf.cast(with_eos.to_tensor(default_value=names.PAD_ID), tf.int32)
        # Each text gets at least one step, so a batch of empty texts still runs.
        dense = tf.pad(dense, [[0, 0], [0, tf.maximum(0, 2 - tf.shape(dense)[1])]])
        log_probs = lm.token_log_probs(dense, tf.cast(with_eos.row_lengths(), tf.int32))
        total = -tf.reduce_sum(log_probs, axis=1)
        num_chars = tf.strings.length(cleaned, unit="UTF8_CHAR")
        return {
            "total_nats": total,
            "nats_per_token": tf.math.divide_no_nan(total, tf.cast(num_tokens, tf.float32)),
            "bits_per_char": tf.math.divide_no_nan(total / math.log(2.0), tf.cast(num_chars, tf.float32)),
            "num_tokens": num_tokens,
            "num_chars": num_chars,
            "num_oov": tf.reduce_sum(tf.cast(ids == names.OOV_ID, tf.int32), axis=1),
        }

    archive = keras.export.ExportArchive()
    archive.track(lm.model)
    archive.track(preprocessor)
    archive.add_endpoint(names.GENERATE_SIGNATURE, generate, input_signature=GENERATE_SPECS)
    archive.add_endpoint(names.LOG_LIKELIHOOD_SIGNATURE, log_likelihood, input_signature=[TEXT_SPEC])
    archive.add_endpoint(names.PREPROCESS_SIGNATURE, preprocess, input_signature=[TEXT_SPEC])
    archive.write_out(export_dir, verbose=False)
