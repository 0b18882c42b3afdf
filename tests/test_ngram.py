"""The Kneser-Ney n-gram baseline (lstm_model.ngram): normalisation, hand computations, documents, round trip.

The strongest check is `test_matches_reference_implementation`: an independent, dictionary-based transcription
of the formulas in the module docstring, compared token by token with the vectorised model.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from fractions import Fraction

import numpy as np
import pytest

from lstm_model.ngram import KneserNeyLM, character_split, fit_and_evaluate

START = "<s>"  # the reference's start symbol: not an int, so it cannot collide with a token id


def reference_discounts(values: list[int]) -> list[float]:
    """[D(0)=0, D1, D2, D3+] from count-of-counts, with the module's documented fallbacks."""
    n = Counter(values)
    if n[1] == 0 or n[2] == 0:
        return [0.0, 0.5, 0.5, 0.5]
    y = n[1] / (n[1] + 2 * n[2])
    estimates = [y, y, y]
    candidates = [1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3] if n[3] else -1.0]
    for r, value in enumerate(candidates, start=1):
        if 0 < value < r:
            estimates[r - 1] = value
    return [0.0, *estimates]


class ReferenceKN:
    """Interpolated modified Kneser-Ney from tuples and dictionaries: slow, obvious, independent of ngram.py."""

    def __init__(self, documents: list[list[int]], order: int, vocabulary_size: int):
        self.order, self.vocabulary_size = order, vocabulary_size
        raw = [Counter() for _ in range(order + 1)]  # raw[k][k-tuple]
        for document in documents:
            padded = [START] * (order - 1) + list(document)
            for i in range(order - 1, len(padded)):
                for k in range(1, order + 1):
                    raw[k][tuple(padded[i - k + 1 : i + 1])] += 1
        self.count: list[dict] = [{}] * (order + 1)
        for k in range(1, order + 1):
            if k == order:
                self.count[k] = dict(raw[k])
            else:
                left_extensions = Counter(gram[1:] for gram in raw[k + 1])
                self.count[k] = {g: raw[k][g] if g[0] == START else left_extensions[g] for g in raw[k]}
        self.discount = [reference_discounts(list(self.count[k].values())) if k else [] for k in range(order + 1)]
        self.total = [defaultdict(int) for _ in range(order + 1)]  # [k][context] sum of counts
        self.types = [defaultdict(lambda: [0, 0, 0, 0]) for _ in range(order + 1)]  # [k][context][min(c, 3)]
        for k in range(1, order + 1):
            for gram, c in self.count[k].items():
                self.total[k][gram[:-1]] += c
                self.types[k][gram[:-1]][min(c, 3)] += 1

    def prob(self, history: list[int], token: int) -> float:
        window = ([START] * self.order + list(history))[len(history) + 1 :]  # the last order-1 symbols
        p = 1.0 / self.vocabulary_size
        for k in range(1, self.order + 1):
            context = tuple(window[len(window) - (k - 1) :]) if k > 1 else ()
            total = self.total[k].get(context, 0)
            if total == 0:
                continue
            d = self.discount[k]
            c = self.count[k].get((*context, token), 0)
            types = self.types[k][context]
            gamma = (d[1] * types[1] + d[2] * types[2] + d[3] * types[3]) / total
            p = max(c - d[min(c, 3)], 0.0) / total + gamma * p
        return p


def random_corpus(seed: int, documents: int, vocabulary: range) -> list[list[int]]:
    """Short documents over a small alphabet with some structure (a Markov chain), so n-grams repeat."""
    rng = np.random.default_rng(seed)
    symbols = np.array(vocabulary)
    transition = rng.dirichlet(np.full(symbols.size, 0.3), size=symbols.size)
    corpus = []
    for _ in range(documents):
        state = rng.integers(symbols.size)
        document = []
        for _ in range(rng.integers(1, 30)):
            document.append(int(symbols[state]))
            state = rng.choice(symbols.size, p=transition[state])
        corpus.append(document)
    return corpus


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_distribution_sums_to_one(order):
    corpus = random_corpus(0, 40, range(4, 12))
    model = KneserNeyLM(order, vocabulary_size=16).fit(corpus)
    contexts = [
        [],  # start of a document
        [4],  # seen, shorter than the order's context
        corpus[0][:6],  # seen
        [15, 15, 15, 15, 15, 15],  # id in the vocabulary but never seen: an unseen context at every order
        [4, 15, 5],  # unseen in the middle
        corpus[1] + corpus[2],  # long, across what were two documents in training
    ]
    for context in contexts:
        distribution = model.distribution(context)
        assert distribution.shape == (16,)
        assert np.all(distribution > 0)
        assert abs(distribution.sum() - 1.0) < 1e-9, (order, context, distribution.sum())
        # log_prob is the same distribution, one token at a time
        for token in (1, 4, 9, 15):
            assert model.log_prob(context, token) == pytest.approx(math.log(distribution[token]), abs=1e-12)


@pytest.mark.parametrize("alphabet", [6, 30])  # 6 symbols: fallback discounts at low orders; 30: modified ones
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_matches_reference_implementation(order, alphabet):
    corpus = random_corpus(1, 60, range(3, 3 + alphabet))
    model = KneserNeyLM(order, vocabulary_size=alphabet + 4).fit(corpus)
    reference = ReferenceKN(corpus, order, vocabulary_size=alphabet + 4)
    for k in range(1, order + 1):
        np.testing.assert_allclose(model._discounts[k - 1], reference.discount[k], rtol=0, atol=1e-12)
    held_out = random_corpus(2, 10, range(2, alphabet + 4))  # includes ids never seen in training
    for document in held_out[:5] + corpus[:3]:
        for i, token in enumerate(document):
            expected = math.log(reference.prob(document[:i], token))
            assert model.log_prob(document[:i], token) == pytest.approx(expected, rel=0, abs=1e-10), (order, i)
    nats, tokens = model.nats_per_token(held_out)
    expected_total = -sum(math.log(reference.prob(d[:i], t)) for d in held_out for i, t in enumerate(d))
    assert tokens == sum(len(d) for d in held_out)
    assert nats == pytest.approx(expected_total / tokens, abs=1e-10)


@pytest.mark.parametrize("order", [3, 5])
def test_deterministic_pattern_is_nearly_free(order):
    pattern = [4, 5, 6] * 300
    model = KneserNeyLM(order, vocabulary_size=8).fit([pattern])
    nats, tokens = model.nats_per_token([pattern])
    assert tokens == 900
    assert nats < 0.01  # nats/token: only the first token or two of the document carry any real surprise
    assert model.log_prob([4, 5, 6, 4, 5], 6) > math.log(0.99)  # mid-document; the start is seen once only


def test_order_one_is_discounted_unigram_interpolated_with_uniform():
    # counts: 4:1, 5:2, 6:3, 7:4, 8:1, 9:2 -> 13 tokens, count-of-counts n1=2, n2=2, n3=1, n4=1
    corpus = [[4, 5, 5, 6, 6, 6, 7], [7, 7, 7, 8, 9, 9]]
    vocabulary_size = 12
    model = KneserNeyLM(1, vocabulary_size).fit(corpus)
    y = Fraction(2, 2 + 2 * 2)  # n1 / (n1 + 2 n2) = 1/3
    d1, d2, d3 = 1 - 2 * y * Fraction(2, 2), 2 - 3 * y * Fraction(1, 2), 3 - 4 * y * Fraction(1, 1)
    assert (d1, d2, d3) == (Fraction(1, 3), Fraction(3, 2), Fraction(5, 3))
    gamma = (d1 * 2 + d2 * 2 + d3 * 2) / 13  # two types each with count 1, 2, >= 3
    assert gamma == Fraction(7, 13)
    counts = {4: 1, 5: 2, 6: 3, 7: 4, 8: 1, 9: 2}
    discount = {0: 0, 1: d1, 2: d2, 3: d3}
    total = Fraction(0)
    for token in range(vocabulary_size):
        c = counts.get(token, 0)
        expected = (Fraction(c) - discount[min(c, 3)]) / 13 + gamma / vocabulary_size
        total += expected
        if token:  # id 0 is padding: log_prob refuses it, but the distribution still gives it the uniform share
            assert model.log_prob([], token) == pytest.approx(math.log(expected), abs=1e-12)
        # at order 1 the context is irrelevant
        assert model.distribution([9, 9, 4])[token] == pytest.approx(float(expected), abs=1e-15)
    assert total == 1
    assert math.exp(model.log_prob([], 4)) == pytest.approx(float(Fraction(15, 156)), abs=1e-15)


def test_unseen_tokens_get_finite_log_prob():
    model = KneserNeyLM(5, vocabulary_size=1000).fit([[4, 5, 6, 7] * 20])
    for context, token in [([4, 5, 6], 999), ([], 500), ([999, 998, 997, 996], 1), ([4, 5, 6], 2)]:
        value = model.log_prob(context, token)
        assert math.isfinite(value) and value < 0
    nats, tokens = model.nats_per_token([[999, 500, 4, 5, 6, 7]])
    assert math.isfinite(nats) and tokens == 6


def test_round_trip_through_json_is_exact():
    corpus = random_corpus(3, 30, range(4, 20))
    model = KneserNeyLM(4, vocabulary_size=24).fit(corpus)
    restored = KneserNeyLM.from_dict(json.loads(json.dumps(model.to_dict())))
    assert (restored.order, restored.vocabulary_size, restored.training_tokens) == (4, 24, model.training_tokens)
    for document in random_corpus(4, 5, range(1, 24)):
        for i, token in enumerate(document):
            assert restored.log_prob(document[:i], token) == model.log_prob(document[:i], token)
    assert restored.nats_per_token(corpus) == model.nats_per_token(corpus)


def test_documents_do_not_share_context():
    # In training, 6 only ever follows 4 5 if the two documents were run together.
    separate = KneserNeyLM(3, vocabulary_size=10).fit([[4, 5], [6, 7]])
    joined = KneserNeyLM(3, vocabulary_size=10).fit([[4, 5, 6, 7]])
    assert joined.log_prob([4, 5], 6) > separate.log_prob([4, 5], 6) + 1.0
    # Separately, neither "4 5" nor "5" was ever followed by a token: both back off to the unigram level, exactly
    # as a context never seen at all does.
    assert separate.log_prob([4, 5], 6) == pytest.approx(separate.log_prob([8, 9], 6), abs=1e-15)
    # Scoring: the second document's first token is predicted from the start context, not from "4 5".
    nats, tokens = separate.nats_per_token([[4, 5], [6, 7]])
    by_hand = -(
        separate.log_prob([], 4) + separate.log_prob([4], 5) + separate.log_prob([], 6) + separate.log_prob([6], 7)
    )
    assert tokens == 4 and nats == pytest.approx(by_hand / 4, abs=1e-12)
    assert separate.nats_per_token([[4, 5], [6, 7]]) != separate.nats_per_token([[4, 5, 6, 7]])


def test_document_start_is_a_context():
    # Every document starts with 7; in the middle 7 is rare. The start context must know that.
    corpus = [[7, 4, 5, 6, 4, 5, 6, 4], [7, 5, 6, 4, 5, 6, 4, 5], [7, 6, 4, 5, 6, 4, 5, 6]]
    model = KneserNeyLM(2, vocabulary_size=9).fit(corpus)
    assert model.log_prob([], 7) > math.log(0.5)
    assert model.log_prob([4], 7) < math.log(0.1)


def test_nats_per_token_matches_log_prob_near_document_starts():
    corpus = random_corpus(5, 20, range(4, 10))
    model = KneserNeyLM(5, vocabulary_size=12).fit(corpus)
    document = corpus[0] + corpus[1]
    nats, tokens = model.nats_per_token([document])
    assert tokens == len(document)
    by_hand = -sum(model.log_prob(document[:i], t) for i, t in enumerate(document)) / len(document)
    assert nats == pytest.approx(by_hand, abs=1e-12)


def test_rejects_padding_and_out_of_range_ids():
    model = KneserNeyLM(3, vocabulary_size=10)
    with pytest.raises(ValueError, match="padding"):
        model.fit([[4, 0, 5]])
    with pytest.raises(ValueError):
        model.fit([[4, 10]])
    with pytest.raises(ValueError):
        model.fit([[]])
    with pytest.raises(RuntimeError):
        model.log_prob([4], 5)
    model.fit([[4, 5, 6], []])  # empty documents are skipped
    with pytest.raises(ValueError):
        model.log_prob([4, -1], 5)
    with pytest.raises(ValueError):
        model.nats_per_token([[4, 11]])
    with pytest.raises(ValueError):
        KneserNeyLM(0, vocabulary_size=10)


def test_fit_and_evaluate_reports_units():
    result = fit_and_evaluate([[4, 5, 6] * 50], [[4, 5, 6, 4]], vocabulary_size=8, order=3)
    assert set(result) == {"order", "nats_per_token", "perplexity", "tokens", "fit_seconds", "eval_seconds"}
    assert result["order"] == 3 and result["tokens"] == 4
    assert result["perplexity"] == pytest.approx(math.exp(result["nats_per_token"]))
    assert result["fit_seconds"] >= 0 and result["eval_seconds"] >= 0


def test_character_split_follows_nanogpt():
    train, validation, vocabulary_size = character_split("abcabcabcd", train_fraction=0.9)
    assert vocabulary_size == 4 + 4  # ids 0-3 reserved, then a b c d
    assert train.tolist() == [4, 5, 6, 4, 5, 6, 4, 5, 6] and validation.tolist() == [7]
