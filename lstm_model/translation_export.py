"""Export of a translation model: one SavedModel, raw source sentences in, translated sentences out.

``MODEL_DIR/export`` holds the source side's cleaning, tokenization and vocabulary lookup
(`textprep.preprocessing.TextPreprocessor`, the dataset's TextSpec), the model, the decoder loop
(`lstm_model.sampling`, pure TensorFlow) and the target side's detokenization, so a caller feeds
raw strings and gets strings back. Signatures (batch sizes are free; every output is per row):

* ``translate(source: string [batch], max_length_a: float32 [], max_length_b: int32 [])``
  beam search with the beam width and length penalty the model was exported with (model_info.json
  "decoding": beam_width, length_penalty; config.json). Outputs:
    ``translation``   string  [batch]  the detokenized translation (lowercase if the dataset lowercases)
    ``log_prob``      float32 [batch]  natural log-probability of the output tokens and the final [EOS]
    ``num_tokens``    int32   [batch]  output tokens, [EOS] excluded
    ``source_tokens`` int32   [batch]  source tokens after cleaning and tokenization, before truncation
    ``source_oov``    int32   [batch]  of those, out of the source vocabulary ([UNK])
  A row emits at most floor(max_length_a * min(source_tokens, max_source_length)) + max_length_b tokens
  (at least 1) before [EOS]; the model's defaults are model_info.json "decoding" max_length_a /
  max_length_b (1.5 and 10). A source longer than max_source_length tokens (config.json, 100 by
  default) is translated from its first max_source_length tokens, as in training. A row's output
  depends only on its own source and the settings, never on the other rows of its batch.
* ``translate_greedy(...)``: the same inputs and outputs, greedy decoding (beam width 1; equal to a
  beam search of width 1). The beam width of `sampling.beam_search` is a trace-time constant, so
  each width is its own signature (and the length penalty is fixed at export time too).
* ``attention(source, max_length_a, max_length_b)``: greedy decoding, plus what it attended to:
    ``translation`` string [batch], ``num_tokens`` int32 [batch], ``source_tokens`` int32 [batch] (as above);
    ``source_pieces`` string [batch, S]: the source tokens the model read (vocabulary spelling, [UNK] for
      unknown words), then "[EOS]"; "" pads;
    ``target_pieces`` string [batch, T]: the output tokens, then "[EOS]"; "" pads;
    ``attention`` float32 [batch, T, S]: row t holds the attention weights over the source used to emit
      target piece t (each row sums to 1 over the real source positions; padding rows are 0).
* ``preprocess(source: string [batch])`` -> ``token_ids`` int64 [batch, time] (0-padded, untruncated, no
  [EOS]) and ``num_tokens`` int32 [batch]: exactly the source ids ingest writes.

Load it with `lstm_model.export.load_exported` (registers tensorflow-text's ops) and call
``loaded.signatures["translate"](source=tf.constant([...]), max_length_a=tf.constant(1.5),
max_length_b=tf.constant(10))``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from lstm_model import seq2seq
from schemas import names
from textprep.preprocessing import TextPreprocessor, TextSpec

GREEDY_SIGNATURE = names.TRANSLATE_SIGNATURE + "_greedy"
ATTENTION_SIGNATURE = "attention"
SOURCE_SPEC = tf.TensorSpec([None], tf.string, name="source")
TRANSLATE_SPECS = [
    SOURCE_SPEC,
    tf.TensorSpec([], tf.float32, name="max_length_a"),
    tf.TensorSpec([], tf.int32, name="max_length_b"),
]
# Word tokens come back joined by spaces; these put punctuation back where cleaned text has it, so the
# output reads like the references (sacreBLEU's 13a tokenizer does not split hyphens: "t - shirt" != "t-shirt").
_DETOKENIZE_RULES = (
    (r" ([.,!?;:%)\]}])", r"\1"),
    (r"([(\[{$]) ", r"\1"),
    (r"([\pL\pN]) ([-/]) ([\pL\pN])", r"\1\2\3"),
)


def polish(texts: tf.Tensor, tokenizer: str) -> tf.Tensor:
    """Detokenized word/WordPiece text [batch] -> the same with spaces around punctuation removed (char: as is)."""
    if tokenizer == "char":
        return texts
    for pattern, replacement in _DETOKENIZE_RULES:
        texts = tf.strings.regex_replace(texts, pattern, replacement)
    return texts


def detokenize(preprocessor: TextPreprocessor, token_ids: tf.Tensor, num_tokens: tf.Tensor) -> tf.Tensor:
    """Decoder output ids [batch, L] with per-row lengths ([EOS] excluded) -> [batch] strings."""
    ragged = tf.RaggedTensor.from_tensor(token_ids, lengths=num_tokens)
    return polish(preprocessor.detokenize(ragged), preprocessor.spec.tokenizer)


def export_translation_model(
    model: seq2seq.Seq2Seq,
    source_vocabulary: list[str],
    target_vocabulary: list[str],
    spec: TextSpec,
    export_dir: str,
) -> None:
    """Write the raw-text SavedModel of `model` (weights as they are now) to `export_dir`."""
    config = model.config
    if len(source_vocabulary) != model.source_vocabulary_size or len(target_vocabulary) != model.target_vocabulary_size:
        raise ValueError("the vocabularies do not match the model's embedding sizes")
    source_pre = TextPreprocessor(source_vocabulary, spec=spec)
    target_pre = TextPreprocessor(target_vocabulary, spec=spec)
    source_table = tf.constant(source_vocabulary)
    target_table = tf.constant(target_vocabulary)

    def prepare(source):
        ids = source_pre.ids(source)  # [batch, (tokens)] int64
        dense, kept = seq2seq.source_with_eos(ids, config.max_source_length)
        return ids, dense, kept

    def check(max_length_a, max_length_b):
        tf.debugging.assert_non_negative(max_length_a, message="max_length_a must be >= 0")
        tf.debugging.assert_positive(max_length_b, message="max_length_b must be >= 1")

    def translate_with(width):
        def translate(source, max_length_a, max_length_b):
            check(max_length_a, max_length_b)
            ids, dense, kept = prepare(source)
            out = seq2seq.translate_ids(
                model,
                dense,
                kept,
                beam_width=width,
                length_penalty=config.length_penalty,
                max_length_a=max_length_a,
                max_length_b=max_length_b,
            )
            return {
                "translation": detokenize(target_pre, out["token_ids"], out["num_tokens"]),
                "log_prob": out["log_prob"],
                "num_tokens": out["num_tokens"],
                "source_tokens": tf.cast(ids.row_lengths(), tf.int32),
                "source_oov": tf.reduce_sum(tf.cast(ids == names.OOV_ID, tf.int32), axis=1),
            }

        return translate

    def attention(source, max_length_a, max_length_b):
        check(max_length_a, max_length_b)
        ids, dense, kept = prepare(source)
        out = seq2seq.translate_ids(
            model,
            dense,
            kept,
            beam_width=1,
            length_penalty=0.0,
            max_length_a=max_length_a,
            max_length_b=max_length_b,
        )
        weights = seq2seq.attention_of(model, dense, out["token_ids"], out["num_tokens"])
        target_real = tf.sequence_mask(out["num_tokens"] + 1, tf.shape(out["token_ids"])[1])
        return {
            "translation": detokenize(target_pre, out["token_ids"], out["num_tokens"]),
            "num_tokens": out["num_tokens"],
            "source_tokens": tf.cast(ids.row_lengths(), tf.int32),
            "source_pieces": tf.where(dense != names.PAD_ID, tf.gather(source_table, dense), ""),
            "target_pieces": tf.where(target_real, tf.gather(target_table, out["token_ids"]), ""),
            "attention": weights,
        }

    def preprocess(source):
        ids = source_pre.ids(source)
        return {
            "token_ids": ids.to_tensor(default_value=names.PAD_ID),
            "num_tokens": tf.cast(ids.row_lengths(), tf.int32),
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(source_pre)
    archive.track(target_pre)
    # Traced without autograph: the code has no Python control flow on tensors (loops are tf.while_loops).
    endpoints = (
        (names.TRANSLATE_SIGNATURE, translate_with(config.beam_width), TRANSLATE_SPECS),
        (GREEDY_SIGNATURE, translate_with(1), TRANSLATE_SPECS),
        (ATTENTION_SIGNATURE, attention, TRANSLATE_SPECS),
        (names.PREPROCESS_SIGNATURE, preprocess, [SOURCE_SPEC]),
    )
    for name, function, specs in endpoints:
        archive.add_endpoint(name, tf.function(function, input_signature=specs, autograph=False))
    archive.write_out(export_dir, verbose=False)


def translate_batches(signature, sources: list[str], max_length_a: float, max_length_b: int, batch_size: int = 64):
    """Run a translate signature over Python strings in batches; (translations, outputs of every row as dicts)."""
    translations, rows = [], []
    for start in range(0, len(sources), batch_size):
        out = signature(
            source=tf.constant(sources[start : start + batch_size]),
            max_length_a=tf.constant(max_length_a, tf.float32),
            max_length_b=tf.constant(max_length_b, tf.int32),
        )
        batch = {key: value.numpy() for key, value in out.items()}
        for i in range(len(batch["translation"])):
            row = {key: value[i] for key, value in batch.items()}
            row["translation"] = row["translation"].decode("utf-8")
            rows.append(row)
            translations.append(row["translation"])
    return translations, rows
