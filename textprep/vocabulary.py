"""Vocabularies: choosing them from token counts, learning WordPiece, and the vocab.tsv format.

vocab.tsv holds one ``token<TAB>count`` line per id, in id order: the reserved tokens
first (count 0), then tokens by training-side count, most frequent first (a sampled
softmax's log-uniform sampler relies on that order). A token that is itself whitespace
(a character vocabulary's space, newline or tab) is written escaped (``\\s``, ``\\n``,
``\\t``, ``\\r``) so the file stays one token per line; no other token can look like an
escape (words hold no backslash, characters are one long).

Pure Python (the WordPiece learner is tensorflow-text's, also pure Python): no I/O here,
callers read and write the text with their own file system layer.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence

from schemas import names

_ESCAPES = {" ": "\\s", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNESCAPES = {escaped: token for token, escaped in _ESCAPES.items()}


class VocabularyError(ValueError):
    """A vocabulary file that is not one of this project's (the message says what is wrong)."""


def format_vocabulary(rows: Iterable[tuple[str, int]]) -> str:
    """[(token, count)] in id order -> the text of vocab.tsv."""
    return "".join(f"{_ESCAPES.get(token, token)}\t{count}\n" for token, count in rows)


def parse_vocabulary(text: str, where: str = "vocabulary") -> list[tuple[str, int]]:
    """The text of vocab.tsv -> [(token, count)] in id order; VocabularyError if it is not one."""
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        token, tab, count = line.rpartition("\t")
        if not tab or not count.isdigit():
            raise VocabularyError(f"{where} line {number} is not 'token<TAB>count': {line[:60]!r}")
        rows.append((_UNESCAPES.get(token, token), int(count)))
    tokens = [token for token, _ in rows]
    if tuple(tokens[: len(names.RESERVED_TOKENS)]) != names.RESERVED_TOKENS:
        raise VocabularyError(f"{where} does not start with {names.RESERVED_TOKENS}: not a vocabulary of this project")
    if len(set(tokens)) != len(tokens):
        raise VocabularyError(f"{where} lists a token twice")
    return rows


def reserved_prefix(tokens: Sequence[str]) -> tuple[str, ...]:
    """The reserved tokens a vocabulary starts with: the classifier's two or the generative four."""
    generative = names.GENERATIVE_RESERVED_TOKENS
    return generative if tuple(tokens[: len(generative)]) == generative else names.RESERVED_TOKENS


def top_k_vocabulary(
    counts: Mapping[str, int] | Mapping[bytes, int],
    max_size: int,
    min_count: int,
    reserved_tokens: Sequence[str] = names.RESERVED_TOKENS,
) -> list[tuple[str, int]]:
    """[(token, count)] in id order: reserved tokens, then by count desc, token asc.

    `max_size` counts the reserved tokens; ties are broken by token so the
    vocabulary is the same on every run. `counts` may be keyed by str or by UTF-8 bytes
    (ingest counts bytes and decodes only the tokens kept): UTF-8's byte order is the
    code-point order of str, so both give the same vocabulary, as str.
    """
    reserved = tuple(reserved_tokens)
    if max_size <= len(reserved):
        raise ValueError(f"vocabulary size must exceed {len(reserved)}, got {max_size}")
    skipped = {*reserved, *(token.encode("utf-8") for token in reserved)}
    eligible = ((token, count) for token, count in counts.items() if count >= min_count and token not in skipped)
    words = heapq.nsmallest(max_size - len(reserved), eligible, key=lambda tc: (-tc[1], tc[0]))
    return [(token, 0) for token in reserved] + [(as_text(token), count) for token, count in words]


def as_text(token: str | bytes) -> str:
    """A counted token as str (ingest counts tokens as UTF-8 bytes)."""
    return token.decode("utf-8") if isinstance(token, bytes) else token


def learn_wordpiece(
    word_counts: Mapping[str, int] | Mapping[bytes, int], max_size: int, min_count: int, reserved_tokens: Sequence[str]
) -> list[tuple[str, int]]:
    """WordPiece vocabulary from word counts (keyed by str or UTF-8 bytes; tensorflow-text's learner), as
    [(piece, count)] in id order.

    The learner picks pieces; their counts are then the word counts spread over the pieces
    each word is cut into, so ids can be sorted by frequency like any other vocabulary.
    Words seen fewer than `min_count` times are left out of learning.
    """
    import tensorflow as tf
    import tensorflow_text as tf_text
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    reserved = list(reserved_tokens)
    counts = ((as_text(word), count) for word, count in word_counts.items())
    kept = {word: count for word, count in counts if count >= min_count and word not in reserved}
    if not kept:
        return [(token, 0) for token in reserved]
    pieces = learner.learn(
        sorted(kept.items()),
        vocab_size=max_size,
        reserved_tokens=reserved,
        lower_thresh=max(min_count, 1),
        joiner=names.WORDPIECE_SUFFIX,
    )
    pieces = reserved + [piece for piece in pieces if piece not in reserved]
    tokenizer = tf_text.FastWordpieceTokenizer(
        pieces, suffix_indicator=names.WORDPIECE_SUFFIX, token_out_type=tf.int64, unknown_token=names.OOV_TOKEN
    )
    words = sorted(kept)
    piece_counts = [0] * len(pieces)
    for start in range(0, len(words), 8192):
        chunk = words[start : start + 8192]
        ids = tokenizer.tokenize(tf.constant(chunk)).to_list()
        for word, word_ids in zip(chunk, ids, strict=True):
            for piece_id in word_ids:
                piece_counts[piece_id] += kept[word]
    learned = [(piece, piece_counts[i]) for i, piece in enumerate(pieces) if i >= len(reserved)]
    learned.sort(key=lambda pc: (-pc[1], pc[0]))
    return [(token, 0) for token in reserved] + learned[: max_size - len(reserved)]
