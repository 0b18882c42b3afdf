"""The translation baseline: word-by-word translation with an IBM Model 1 dictionary (Brown et al. 1993).

Model 1 learns t(target word | source word) from the training pairs alone, by a few EM iterations
(every target word of a pair aligned to any of its source words or to NULL, uniformly a priori).
Translation replaces each source token by its most likely target word, in source order; a source
word never seen in training (names, numbers) is copied through, and so is a token without letters
(punctuation, numbers) that the target vocabulary also has (Model 1 otherwise lets frequent tokens
such as "." act as garbage collectors for "a"). No reordering, no language model: what a bilingual dictionary alone buys. The neural
model's gain over it is what attention and a decoder buy (`lstm_model.tasks.translation`).

Everything is numpy over the (pair, target position, source position) triples: ~5 million for
Multi30k's 29k training pairs, a few seconds per iteration.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

NULL = 0  # the NULL source word takes the reserved [PAD] id, which no real source token has


def fit_model1(
    source_ids: Sequence[Sequence[int]], target_ids: Sequence[Sequence[int]], iterations: int = 5
) -> dict[int, int]:
    """EM for IBM Model 1 on id pairs; returns {source id: most likely target id} for every source id seen."""
    pair_index, source_of, target_of, position_key = [], [], [], []
    key = 0
    for source, target in zip(source_ids, target_ids, strict=True):
        if not target:
            continue
        with_null = np.asarray([NULL, *source], np.int64)
        target = np.asarray(target, np.int64)
        # One entry per (target position j, source position i): target position keys are global.
        source_of.append(np.tile(with_null, len(target)))
        target_of.append(np.repeat(target, len(with_null)))
        position_key.append(np.repeat(np.arange(key, key + len(target)), len(with_null)))
        key += len(target)
        pair_index.append(len(target))
    if not source_of:
        return {}
    src = np.concatenate(source_of)
    tgt = np.concatenate(target_of)
    positions = np.concatenate(position_key)
    # Index the co-occurring (source, target) word pairs: t is stored only for those.
    pairs, pair_of_entry = np.unique(src * (int(tgt.max()) + 1) + tgt, return_inverse=True)
    pair_source = pairs // (int(tgt.max()) + 1)
    pair_target = pairs % (int(tgt.max()) + 1)
    prob = np.ones(len(pairs))  # uniform start (any constant: the first E-step normalises)
    for _ in range(iterations):
        weights = prob[pair_of_entry]
        denominators = np.bincount(positions, weights=weights, minlength=key)
        posterior = weights / denominators[positions]
        counts = np.bincount(pair_of_entry, weights=posterior, minlength=len(pairs))
        totals = np.bincount(pair_source, weights=counts)
        prob = counts / totals[pair_source]
    best: dict[int, tuple[float, int]] = {}
    order = np.lexsort((-prob, pair_source))  # by source, then most probable first
    first = np.ones(len(order), bool)
    first[1:] = pair_source[order][1:] != pair_source[order][:-1]
    for index in order[first]:
        source = int(pair_source[index])
        if source != NULL:
            best[source] = (float(prob[index]), int(pair_target[index]))
    return {source: target for source, (_, target) in best.items()}


class DictionaryTranslator:
    """Word-by-word translation of token lists with a fitted Model 1 dictionary."""

    def __init__(self, dictionary: dict[int, int], source_vocabulary: Sequence[str], target_vocabulary: Sequence[str]):
        self.by_word = {
            source_vocabulary[s]: target_vocabulary[t]
            for s, t in dictionary.items()
            if s < len(source_vocabulary) and t < len(target_vocabulary)
        }
        target_words = set(target_vocabulary)
        for word in list(self.by_word):
            if word in target_words and not any(ch.isalpha() for ch in word):
                self.by_word[word] = word

    def translate_tokens(self, tokens: Sequence[str]) -> str:
        return " ".join(self.by_word.get(token, token) for token in tokens)


def fit_and_translate(
    train_source_ids,
    train_target_ids,
    source_vocabulary: Sequence[str],
    target_vocabulary: Sequence[str],
    test_source_texts: Sequence[str],
    spec,
    iterations: int = 5,
) -> tuple[list[str], dict]:
    """Fit on the training ids, translate cleaned source texts (tokenized with the dataset's TextSpec).

    Returns (translations, {"fit_seconds", "translate_seconds", "dictionary_size", "iterations"}).
    """
    from textprep.preprocessing import tokenize_batch

    started = time.monotonic()
    dictionary = fit_model1(train_source_ids, train_target_ids, iterations)
    fitted = time.monotonic()
    translator = DictionaryTranslator(dictionary, source_vocabulary, target_vocabulary)
    tokens = tokenize_batch(list(test_source_texts), spec) if test_source_texts else []
    translations = [translator.translate_tokens(row) for row in tokens]
    return translations, {
        "fit_seconds": round(fitted - started, 2),
        "translate_seconds": round(time.monotonic() - fitted, 3),
        "dictionary_size": len(dictionary),
        "iterations": iterations,
    }
