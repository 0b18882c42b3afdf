"""The one definition of text preprocessing: cleaning, tokenization, lookup, detokenization.

Everything here is TensorFlow ops (tensorflow-text for tokenization), so the
same code runs in three places and cannot drift:

* the ingest pipeline calls `clean_batch` / `CompiledLookup` on batches of
  Python strings to write token ids to TFRecords;
* the exported model embeds `TextPreprocessor` in its signatures, so scoring
  and generation feed raw strings (and generation gets text back);
* tests hold the two against each other on real text, for every tokenizer.

What varies between tasks and corpora is one small record, `TextSpec` (case,
markup, whitespace, tokenizer), decided at ingest, written to the manifest and
read back by training and export; nothing re-derives it.

Shapes: a batch of texts is a string tensor [batch]; tokens are a RaggedTensor
[batch, (tokens)] of strings; ids a RaggedTensor [batch, (tokens)] of int64.
"""

from __future__ import annotations

import dataclasses
import functools
import html.entities
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from schemas import names
from textprep.spec import TextSpec, as_spec  # noqa: F401 -- as_spec: re-exported for callers of this module

# HTML tags (`<br />`, `<i>`, `</a href=...>`) and comments become a space. Only
# tag-shaped runs match, so "a < b and c > d" is left alone.
_TAG_PATTERN = r"<!--.*?-->|</?[A-Za-z][^<>]{0,500}>"
# Character references: named (`&amp;`), decimal (`&#39;`) and hex (`&#x27;`).
_ENTITY_PATTERN = r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});"
# A whole text that holds at least one reference ((?s): "." also matches a line break).
_ANY_ENTITY_PATTERN = r"(?s).*(?:" + _ENTITY_PATTERN + r").*"
_DECIMAL_ENTITY = r"&#[0-9]{1,7};"
_HEX_ENTITY = r"&#[xX][0-9A-Fa-f]{1,6};"
# Control characters (Cc: NUL, tabs, newlines, ...) and the zero-width space
# become a space; other format characters (Cf: zero-width joiners, bidi marks,
# BOM, soft hyphen) are removed.
_CONTROL_PATTERN = r"[\p{Cc}\x{200B}]+"  # U+200B zero-width space separates words
# The same without the line feed (Cc is U+0000-001F and U+007F-009F), for the modes that keep line breaks.
_CONTROL_EXCEPT_NEWLINE_PATTERN = r"[\x00-\x09\x0B-\x1F\x7F-\x9F\x{200B}]+"
# Whitespace runs become one space. The patterns match what `[\t\f\v \p{Zs}]+` and `[\s\p{Z}]+` match,
# except a lone plain space, which becomes itself: same output, but regex_replace's cost grows with
# the number of matches, and a lone space between every two words was 9 in 10 of them (58 -> 7 µs
# a review). Leftmost-first: a run of two or more is taken whole by the first branch.
_HORIZONTAL_WHITESPACE_PATTERN = r"[\t\f\v \p{Zs}]{2,}|[\t\f\v]|[^\P{Zs} ]"  # not \n, \u2028 or \u2029
_FORMAT_PATTERN = r"\p{Cf}+"
_WHITESPACE_PATTERN = r"[\s\p{Z}]{2,}|[^\S ]|[^\P{Z} ]"
# The definition of a token: a word (letters, digits, marks, underscore, with inner apostrophes:
# "don't", "rock'n'roll") or one other non-space character (punctuation, emoji). `tokenize` gets
# the same tokens a faster way; tests hold the two together.
_WORD = r"[\p{L}\p{N}\p{M}_]+(?:'[\p{L}\p{N}\p{M}_]+)*"
TOKEN_PATTERN = _WORD + r"|[^\s\p{L}\p{N}\p{M}_]"
# What `tokenize` marks with spaces: the words with inner apostrophes (the only words whose token
# differs from their whitespace/punctuation-delimited run) and every other non-space, non-word
# character. Together with the whitespace between tokens, this cuts a text at exactly the
# boundaries of TOKEN_PATTERN's matches: a word without an apostrophe is a run of word characters
# that ends at whitespace or at a marked character. About one match in eight tokens instead of one
# per token: tokenizing an IMDB review took 74 µs of CPU, now 39 (most of it the split).
_TOKEN_MARK_PATTERN = r"[\p{L}\p{N}\p{M}_]+(?:'[\p{L}\p{N}\p{M}_]+)+|[^\s\p{L}\p{N}\p{M}_]"
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
    """Raw text -> cleaned text -> tokens -> vocabulary ids (and ids -> text), all TensorFlow ops.

    Args:
      vocabulary: tokens in id order, starting with `spec.reserved_tokens`. None for
        cleaning/tokenizing only (not possible for WordPiece, whose tokenizer is the vocabulary).
      spec: the TextSpec (lowercase, markup, whitespace, tokenizer).
    """

    def __init__(self, vocabulary: Sequence[str] | None = None, spec: TextSpec | None = None, **spec_fields):
        super().__init__(name="text_preprocessor")
        # `lowercase=False` alone (the older call) still works: it sets that field of the default spec.
        spec = spec or TextSpec(**spec_fields)
        self.spec = spec
        self.lowercase = spec.lowercase
        entity_keys, entity_values = _named_entities()
        self._entities = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(entity_keys), tf.constant(entity_values), tf.string, tf.string
            ),
            default_value="",
        )
        self.vocabulary_size = 0
        self._vocabulary = None
        self._wordpiece = None
        self._id_to_token = None
        reserved = spec.reserved_tokens
        if vocabulary is None:
            if spec.tokenizer == "wordpiece":
                raise ValueError("a WordPiece preprocessor needs its vocabulary")
            return
        vocabulary = list(vocabulary)
        if tuple(vocabulary[: len(reserved)]) != reserved:
            raise ValueError(
                f"vocabulary must start with the reserved tokens {reserved}, got {vocabulary[: len(reserved)]}"
            )
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("vocabulary has repeated tokens")
        self.vocabulary_size = len(vocabulary)
        self._id_to_token = tf.constant(vocabulary, dtype=tf.string)
        if spec.tokenizer == "wordpiece":
            # Reserved tokens alone do not build a trie (a run whose vocabulary splits hold no text): " " is
            # never a word, since the tokenizer splits on whitespace first, so every word maps to [UNK].
            trie_tokens = vocabulary if len(vocabulary) > len(reserved) else [*vocabulary, " "]
            self._wordpiece = tf_text.FastWordpieceTokenizer(
                trie_tokens,
                suffix_indicator=names.WORDPIECE_SUFFIX,
                max_bytes_per_word=100,
                token_out_type=tf.int64,
                unknown_token=names.OOV_TOKEN,
                support_detokenization=True,
            )
            return
        words = vocabulary[len(reserved) :]
        ids = list(range(len(reserved), len(vocabulary)))
        if not words:
            # A table cannot be empty; "" is never a token, so this maps nothing.
            words, ids = [""], [names.OOV_ID]
        self._vocabulary = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(words, dtype=tf.string), tf.constant(ids, dtype=tf.int64)),
            default_value=names.OOV_ID,
        )

    # ------------------------------------------------------------------ cleaning
    def _unescape(self, texts: tf.Tensor) -> tf.Tensor:
        """Decode HTML character references, like Python's html.unescape for ';' forms.

        [batch] -> [batch]. Only the texts that hold a reference go through the decoder:
        regex_split keeps its delimiters through RE2's submatch path, about 250 µs for a
        1.3 kB review whether or not it matches anything, against ~5 µs for the whole-match
        test that picks the texts (most reviews have no reference). The rest are unchanged by
        the decoder anyway, so the result is the same.
        """
        has_reference = tf.strings.regex_full_match(texts, _ANY_ENTITY_PATTERN)  # [batch] bool
        where = tf.where(has_reference)  # [n, 1] positions of the texts to decode
        decoded = self._decode_references(tf.gather_nd(texts, where))  # [n]
        return tf.tensor_scatter_nd_update(texts, where, decoded)

    def _decode_references(self, texts: tf.Tensor) -> tf.Tensor:
        """[n] strings -> [n] strings with every character reference decoded."""
        pieces = tf_text.regex_split(texts, _ENTITY_PATTERN, _ENTITY_PATTERN)  # [n, (pieces)]
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
        spaces, strip HTML tags, decode HTML entities (both with `strip_html`),
        Unicode NFKC, control characters to spaces again, format characters
        removed, optional lowercasing, then whitespace by `spec.whitespace`:
        "collapse" turns every run into one space and trims; "lines" keeps line
        breaks (\r\n and \r become \n), turns runs of other whitespace into one
        space and trims; "keep" only normalises line breaks (a character model
        learns the layout, as nanoGPT's does).
        """
        spec = self.spec
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        texts = tf.strings.unicode_transcode(
            texts, "UTF-8", "UTF-8", errors="replace", replacement_char=_REPLACEMENT_CHARACTER
        )
        keeps_lines = spec.whitespace != "collapse"
        control = _CONTROL_EXCEPT_NEWLINE_PATTERN if keeps_lines else _CONTROL_PATTERN
        if keeps_lines:
            texts = tf.strings.regex_replace(texts, r"\r\n?", "\n")
        # NUL would cut the text short in ICU normalization: control characters go first.
        texts = tf.strings.regex_replace(texts, control, " ")
        if spec.strip_html:
            texts = tf.strings.regex_replace(texts, _TAG_PATTERN, " ")
            texts = self._unescape(texts)
        texts = tf_text.normalize_utf8(texts, "NFKC")
        texts = tf.strings.regex_replace(texts, control, " ")  # again: entities can encode them
        texts = tf.strings.regex_replace(texts, _FORMAT_PATTERN, "")
        if spec.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        if spec.whitespace == "keep":
            return texts
        whitespace = _HORIZONTAL_WHITESPACE_PATTERN if keeps_lines else _WHITESPACE_PATTERN
        texts = tf.strings.regex_replace(texts, whitespace, " ")
        return tf.strings.strip(texts)

    # ------------------------------------------------------------------ tokens and ids
    def tokenize(self, cleaned: tf.Tensor) -> tf.RaggedTensor:
        """[batch] cleaned strings -> [batch, (tokens)] strings.

        word: words and single punctuation/emoji characters (regex, tensorflow-text);
        char: Unicode characters, whitespace included; wordpiece: the words, which
        `lookup` then cuts into WordPiece ids.
        """
        if self.spec.tokenizer == "char":
            return tf.strings.unicode_split(cleaned, "UTF-8")
        # Token boundaries get a space (_TOKEN_MARK_PATTERN), then the text is split at whitespace
        # runs. The same tokens as tensorflow-text's regex_split with TOKEN_PATTERN kept as
        # delimiters, minus the whitespace between them, at about 1/14 of its CPU (regex_split wraps
        # the pattern in a capture group, so RE2 takes its submatch path for every token; a replace
        # that needs only whole matches, and only a few of them, does not):
        # a token holds no whitespace, and every character outside a token is RE2's \s
        # ([\t\n\f\r ]), which the split drops. The one character the split takes for
        # whitespace and RE2's \s does not is \v, a control character that cleaning turns into
        # a space, like every control character (so "cleaned strings" is a precondition here).
        return tf.strings.split(tf.strings.regex_replace(cleaned, _TOKEN_MARK_PATTERN, r" \0 "))

    def lookup(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        """[batch, (tokens)] strings -> [batch, (ids)] int64 ids (OOV_ID if unknown).

        For WordPiece a word becomes one or more ids, so rows can get longer.
        """
        if self._wordpiece is not None:
            pieces = self._wordpiece.tokenize(tokens)  # [batch, (words), (pieces)]
            return pieces.merge_dims(1, 2)
        if self._vocabulary is None:
            raise ValueError("this TextPreprocessor was built without a vocabulary")
        return tf.ragged.map_flat_values(self._vocabulary.lookup, tokens)

    def ids(self, texts: tf.Tensor, already_clean: bool = False) -> tf.RaggedTensor:
        """[batch] strings -> [batch, (tokens)] int64 ids, untruncated."""
        cleaned = texts if already_clean else self.clean(texts)
        return self.lookup(self.tokenize(cleaned))

    def detokenize(self, ids) -> tf.Tensor:
        """[batch, (ids)] or [batch, time] int ids -> [batch] strings; reserved ids (padding, [BOS], [EOS]) are dropped.

        char: the characters joined (exact inverse of tokenize on cleaned text); word:
        tokens joined by spaces; wordpiece: pieces glued into words, words joined by spaces.
        [UNK] stays visible as "[UNK]".
        """
        if self._id_to_token is None:
            raise ValueError("this TextPreprocessor was built without a vocabulary")
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
        ids = tf.cast(ids, tf.int64)
        # Keep real tokens and [UNK]; drop [PAD], [BOS], [EOS] and anything past the vocabulary.
        keep = tf.logical_or(ids >= len(self.spec.reserved_tokens), ids == names.OOV_ID)
        keep = tf.logical_and(keep, ids < self.vocabulary_size)
        ids = tf.ragged.boolean_mask(ids, keep)
        if self._wordpiece is not None:
            return self._wordpiece.detokenize(ids)
        tokens = tf.gather(self._id_to_token, ids)
        separator = "" if self.spec.tokenizer == "char" else " "
        return tf.strings.reduce_join(tokens, axis=-1, separator=separator)


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


@functools.lru_cache(maxsize=8)
def _compiled(spec: TextSpec):
    preprocessor = TextPreprocessor(spec=spec) if spec.tokenizer != "wordpiece" else None
    # WordPiece splits words first: cleaning and word splitting are those of the word tokenizer.
    preprocessor = preprocessor or TextPreprocessor(spec=dataclasses.replace(spec, tokenizer="word"))
    # autograph=False: the functions branch only on the Python TextSpec, never on a tensor, and
    # autograph's source rewriting was a third of the ~3 s a worker spent on its first batch.
    signature = [tf.TensorSpec([None], tf.string)]
    clean = tf.function(preprocessor.clean, input_signature=signature, autograph=False)
    tokenize = tf.function(preprocessor.tokenize, input_signature=signature, autograph=False)
    return clean, tokenize


def clean_batch(texts: Sequence[str], spec: TextSpec | bool = True) -> list[str]:
    """Clean a batch of Python strings with the TF definition above."""
    if not texts:
        return []
    clean, _ = _compiled(as_spec(spec))
    return [value.decode("utf-8") for value in clean(tf.constant(list(texts), tf.string)).numpy()]


def tokenize_batch(cleaned: Sequence[str], spec: TextSpec | bool = True) -> list[list[str]]:
    """Tokenize a batch of already cleaned Python strings (WordPiece: the words it cuts into pieces)."""
    if not cleaned:
        return []
    _, tokenize = _compiled(as_spec(spec))
    tokens = tokenize(tf.constant(list(cleaned), tf.string))
    return [[token.decode("utf-8") for token in row] for row in tokens.to_list()]


def count_tokens_batch(cleaned: Sequence[str], spec: TextSpec | bool = True) -> dict[str, int]:
    """Token counts of a batch of cleaned strings (counted in TF, not per token in Python).

    For WordPiece these are word counts: the input of the WordPiece learner (textprep.vocabulary).
    """
    return {token.decode("utf-8"): count for token, count in count_token_bytes_batch(cleaned, spec).items()}


def count_token_bytes_batch(cleaned: Sequence[str], spec: TextSpec | bool = True) -> dict[bytes, int]:
    """`count_tokens_batch` with the tokens left as UTF-8 bytes, for ingest's vocabulary counts.

    No decode and no int() per token in Python (the dict is built from two lists in C), and a bytes
    key is ~16 bytes smaller than a str; `textprep.vocabulary` decodes only the tokens it keeps.
    """
    if not cleaned:
        return {}
    _, tokenize = _compiled(as_spec(spec))
    flat = tokenize(tf.constant(list(cleaned), tf.string)).flat_values
    unique, _, counts = tf.unique_with_counts(flat)
    return dict(zip(unique.numpy().tolist(), counts.numpy().tolist(), strict=True))


class CompiledLookup:
    """Token ids for batches of cleaned Python strings, given a vocabulary."""

    def __init__(self, vocabulary: Sequence[str], spec: TextSpec | bool = True):
        self.preprocessor = TextPreprocessor(vocabulary, spec=as_spec(spec))
        self._ids = tf.function(
            lambda cleaned: self.preprocessor.ids(cleaned, already_clean=True),
            input_signature=[tf.TensorSpec([None], tf.string)],
            autograph=False,  # as in _compiled: no tensor-dependent Python control flow
        )

    def __call__(self, cleaned: Sequence[str]) -> list[list[int]]:
        if not cleaned:
            return []
        return self._ids(tf.constant(list(cleaned), tf.string)).to_list()
