"""The one definition of text preprocessing: cleaning, tokenization, lookup.

Everything here is TensorFlow ops (tensorflow-text for tokenization), so the
same code runs in three places and cannot drift:

* the ingest pipeline calls `clean_batch` / `TextPreprocessor.ids` on batches of
  Python strings to write token ids to TFRecords;
* the exported model embeds `TextPreprocessor` in its serving signature, so
  scoring feeds raw strings;
* tests hold the two against each other on real reviews.

Shapes: a batch of texts is a string tensor [batch]; tokens are a RaggedTensor
[batch, (tokens)] of strings; ids a RaggedTensor [batch, (tokens)] of int64.
"""

from __future__ import annotations

import functools
import html.entities
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from schemas import names

# HTML tags (`<br />`, `<i>`, `</a href=...>`) and comments become a space. Only
# tag-shaped runs match, so "a < b and c > d" is left alone.
_TAG_PATTERN = r"<!--.*?-->|</?[A-Za-z][^<>]{0,500}>"
# Character references: named (`&amp;`), decimal (`&#39;`) and hex (`&#x27;`).
_ENTITY_PATTERN = r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});"
_DECIMAL_ENTITY = r"&#[0-9]{1,7};"
_HEX_ENTITY = r"&#[xX][0-9A-Fa-f]{1,6};"
# Control characters (Cc: NUL, tabs, newlines, ...) and the zero-width space
# become a space; other format characters (Cf: zero-width joiners, bidi marks,
# BOM, soft hyphen) are removed.
_CONTROL_PATTERN = r"[\p{Cc}\x{200B}]+"  # U+200B zero-width space separates words
_FORMAT_PATTERN = r"\p{Cf}+"
_WHITESPACE_PATTERN = r"[\s\p{Z}]+"
# A token is a word (letters, digits, marks, underscore, with inner apostrophes:
# "don't", "rock'n'roll") or one other non-space character (punctuation, emoji).
_WORD = r"[\p{L}\p{N}\p{M}_]+(?:'[\p{L}\p{N}\p{M}_]+)*"
_TOKEN_PATTERN = _WORD + r"|[^\s\p{L}\p{N}\p{M}_]"
_REPLACEMENT_CHARACTER = 0xFFFD


def _named_entities() -> tuple[list[str], list[str]]:
    """All HTML5 named character references that end in ';' (e.g. '&amp;' -> '&')."""
    keys, values = [], []
    for name, value in sorted(html.entities.html5.items()):
        if name.endswith(";"):
            keys.append("&" + name)
            values.append(value)
    return keys, values


def _hex_value(hex_digits: tf.Tensor) -> tf.Tensor:
    """Integer value of hex strings such as b'27' -> 39. [n] string -> [n] int32."""
    chars = tf.strings.unicode_decode(hex_digits, "UTF-8")  # [n, (digits)] code points
    digit = tf.ragged.map_flat_values(
        lambda c: tf.where(c <= ord("9"), c - ord("0"), tf.bitwise.bitwise_or(c, 0x20) - ord("a") + 10),
        chars,
    )
    # Horner's rule across the ragged row: value = sum(d_i * 16^(n-1-i)).
    lengths = chars.row_lengths()
    position = tf.ragged.range(lengths)  # [n, (digits)] 0..len-1
    power = tf.cast(tf.expand_dims(lengths, 1), tf.int32) - 1 - tf.cast(position, tf.int32)
    weights = tf.ragged.map_flat_values(lambda p: tf.bitwise.left_shift(tf.ones_like(p), 4 * p), power)
    return tf.reduce_sum(digit * weights, axis=1)


class TextPreprocessor(tf.Module):
    """Raw text -> cleaned text -> tokens -> vocabulary ids, all TensorFlow ops.

    Args:
      vocabulary: tokens in id order, starting with the reserved tokens
        (`schemas.names.RESERVED_TOKENS`). None for cleaning/tokenizing only.
      lowercase: whether cleaning lowercases (Unicode-aware).
    """

    def __init__(self, vocabulary: Sequence[str] | None = None, lowercase: bool = True):
        super().__init__(name="text_preprocessor")
        self.lowercase = bool(lowercase)
        entity_keys, entity_values = _named_entities()
        self._entities = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(entity_keys), tf.constant(entity_values), tf.string, tf.string
            ),
            default_value="",
        )
        self.vocabulary_size = 0
        self._vocabulary = None
        if vocabulary is not None:
            vocabulary = list(vocabulary)
            if tuple(vocabulary[: len(names.RESERVED_TOKENS)]) != names.RESERVED_TOKENS:
                raise ValueError(
                    f"vocabulary must start with the reserved tokens {names.RESERVED_TOKENS}, got {vocabulary[:2]}"
                )
            if len(set(vocabulary)) != len(vocabulary):
                raise ValueError("vocabulary has repeated tokens")
            words = vocabulary[len(names.RESERVED_TOKENS) :]
            ids = list(range(len(names.RESERVED_TOKENS), len(vocabulary)))
            if not words:
                # A table cannot be empty; "" is never a token, so this maps nothing.
                words, ids = [""], [names.OOV_ID]
            self.vocabulary_size = len(vocabulary)
            self._vocabulary = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(words, dtype=tf.string), tf.constant(ids, dtype=tf.int64)
                ),
                default_value=names.OOV_ID,
            )

    # ------------------------------------------------------------------ cleaning
    def _unescape(self, texts: tf.Tensor) -> tf.Tensor:
        """Decode HTML character references, like Python's html.unescape for ';' forms."""
        pieces = tf_text.regex_split(texts, _ENTITY_PATTERN, _ENTITY_PATTERN)  # [batch, (pieces)]
        flat = pieces.flat_values
        is_decimal = tf.strings.regex_full_match(flat, _DECIMAL_ENTITY)
        is_hex = tf.strings.regex_full_match(flat, _HEX_ENTITY)
        named = self._entities.lookup(flat)
        decimal_value = tf.strings.to_number(
            tf.where(is_decimal, tf.strings.regex_replace(flat, r"[^0-9]", ""), "0"), tf.int64
        )
        hex_value = tf.cast(
            _hex_value(tf.where(is_hex, tf.strings.regex_replace(flat, r"^&#[xX]|;$", ""), "0")),
            tf.int64,
        )
        code_point = tf.where(is_decimal, decimal_value, hex_value)
        # NUL, surrogates and values past U+10FFFF decode to U+FFFD, as in html.unescape.
        invalid = (code_point == 0) | (code_point > 0x10FFFF) | ((code_point >= 0xD800) & (code_point <= 0xDFFF))
        code_point = tf.cast(tf.where(invalid, tf.constant(_REPLACEMENT_CHARACTER, tf.int64), code_point), tf.int32)
        numeric = tf.strings.unicode_encode(tf.expand_dims(code_point, 1), "UTF-8")
        decoded = tf.where(is_decimal | is_hex, numeric, tf.where(named != "", named, flat))
        return tf.strings.reduce_join(pieces.with_flat_values(decoded), axis=1)

    def clean(self, texts: tf.Tensor) -> tf.Tensor:
        """[batch] raw strings -> [batch] cleaned strings.

        Steps, in order: repair invalid UTF-8 (U+FFFD), control characters to
        spaces, strip HTML tags, decode HTML entities, Unicode NFKC, control
        characters to spaces again, format characters removed, optional
        lowercasing, whitespace runs to one space, trimmed.
        """
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        texts = tf.strings.unicode_transcode(
            texts, "UTF-8", "UTF-8", errors="replace", replacement_char=_REPLACEMENT_CHARACTER
        )
        # NUL would cut the text short in ICU normalization: control characters go first.
        texts = tf.strings.regex_replace(texts, _CONTROL_PATTERN, " ")
        texts = tf.strings.regex_replace(texts, _TAG_PATTERN, " ")
        texts = self._unescape(texts)
        texts = tf_text.normalize_utf8(texts, "NFKC")
        texts = tf.strings.regex_replace(texts, _CONTROL_PATTERN, " ")  # again: entities can encode them
        texts = tf.strings.regex_replace(texts, _FORMAT_PATTERN, "")
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        texts = tf.strings.regex_replace(texts, _WHITESPACE_PATTERN, " ")
        return tf.strings.strip(texts)

    # ------------------------------------------------------------------ tokens and ids
    def tokenize(self, cleaned: tf.Tensor) -> tf.RaggedTensor:
        """[batch] cleaned strings -> [batch, (tokens)] strings (tensorflow-text)."""
        pieces = tf_text.regex_split(cleaned, _TOKEN_PATTERN, _TOKEN_PATTERN)
        # regex_split also returns the text between tokens (single spaces): drop it.
        return tf.ragged.boolean_mask(pieces, tf.strings.regex_full_match(pieces, _TOKEN_PATTERN))

    def lookup(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        """[batch, (tokens)] strings -> [batch, (tokens)] int64 ids (OOV_ID if unknown)."""
        if self._vocabulary is None:
            raise ValueError("this TextPreprocessor was built without a vocabulary")
        return tf.ragged.map_flat_values(self._vocabulary.lookup, tokens)

    def ids(self, texts: tf.Tensor, already_clean: bool = False) -> tf.RaggedTensor:
        """[batch] strings -> [batch, (tokens)] int64 ids, untruncated."""
        cleaned = texts if already_clean else self.clean(texts)
        return self.lookup(self.tokenize(cleaned))


def truncate_ids(ids, max_tokens: int, mode: str = "head"):
    """Keep at most `max_tokens` ids along the last axis.

    "head" keeps the first `max_tokens`, "tail" the last, "head_tail" the first
    quarter and the last three quarters of the budget (a review's opening and its
    verdict; Sun et al. 2019 found head+tail best on IMDB). Texts within the budget
    are kept whole in every mode. Works on a 1-D tensor [tokens] (one example in
    tf.data) and on a RaggedTensor [batch, (tokens)] (a serving batch), so training
    and serving truncate alike.
    """
    if mode not in names.TRUNCATE_MODES:
        raise ValueError(f"truncate mode must be one of {names.TRUNCATE_MODES}, got {mode!r}")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    ragged = isinstance(ids, tf.RaggedTensor)

    def take(window: slice):
        return ids[:, window] if ragged else ids[window]

    if mode == "head":
        return take(slice(None, max_tokens))
    if mode == "tail":
        return take(slice(-max_tokens, None))
    head = max_tokens // 4
    tail = max_tokens - head
    # ids[head:][-tail:] is the whole rest when a text fits, so no branch on its length.
    rest = ids[:, head:][:, -tail:] if ragged else ids[head:][-tail:]
    return tf.concat([take(slice(None, head)), rest], axis=1 if ragged else 0)


# ---------------------------------------------------------------------- Python helpers
# Beam DoFns work on lists of Python strings; these wrap the TF ops in compiled
# functions (one graph per preprocessor) so a batch costs a handful of op calls.


@functools.lru_cache(maxsize=4)
def _compiled(lowercase: bool):
    preprocessor = TextPreprocessor(lowercase=lowercase)
    clean = tf.function(preprocessor.clean, input_signature=[tf.TensorSpec([None], tf.string)])
    tokenize = tf.function(preprocessor.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    return clean, tokenize


def clean_batch(texts: Sequence[str], lowercase: bool = True) -> list[str]:
    """Clean a batch of Python strings with the TF definition above."""
    if not texts:
        return []
    clean, _ = _compiled(bool(lowercase))
    return [value.decode("utf-8") for value in clean(tf.constant(list(texts), tf.string)).numpy()]


def tokenize_batch(cleaned: Sequence[str], lowercase: bool = True) -> list[list[str]]:
    """Tokenize a batch of already cleaned Python strings."""
    if not cleaned:
        return []
    _, tokenize = _compiled(bool(lowercase))
    tokens = tokenize(tf.constant(list(cleaned), tf.string))
    return [[token.decode("utf-8") for token in row] for row in tokens.to_list()]


def count_tokens_batch(cleaned: Sequence[str], lowercase: bool = True) -> dict[str, int]:
    """Token counts of a batch of cleaned strings (counted in TF, not per token in Python)."""
    if not cleaned:
        return {}
    _, tokenize = _compiled(bool(lowercase))
    flat = tokenize(tf.constant(list(cleaned), tf.string)).flat_values
    unique, _, counts = tf.unique_with_counts(flat)
    return {token.decode("utf-8"): int(count) for token, count in zip(unique.numpy(), counts.numpy(), strict=True)}


class CompiledLookup:
    """Token ids for batches of cleaned Python strings, given a vocabulary."""

    def __init__(self, vocabulary: Sequence[str], lowercase: bool = True):
        self.preprocessor = TextPreprocessor(vocabulary, lowercase=lowercase)
        self._ids = tf.function(
            lambda cleaned: self.preprocessor.ids(cleaned, already_clean=True),
            input_signature=[tf.TensorSpec([None], tf.string)],
        )

    def __call__(self, cleaned: Sequence[str]) -> list[list[int]]:
        if not cleaned:
            return []
        return self._ids(tf.constant(list(cleaned), tf.string)).to_list()
