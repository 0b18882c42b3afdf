"""Interpolated modified Kneser-Ney n-gram language model: the baseline an LSTM language model must beat.

    python -m lstm_model.ngram --text ../shared/data/tinyshakespeare/input.txt --orders 3 5 7

Works on integer token ids (characters or words). Each input sequence is one document: contexts never cross
documents, and every document starts with `order - 1` copies of a start symbol (`START_ID`, a reserved negative
id, never a vocabulary id), so the first token of a document is predicted from "start of document". Id 0
(`schemas.names.PAD_ID`) is padding and is rejected as input; every other id in [1, vocabulary_size) is a token.

Smoothing (Chen & Goodman 1998, "An empirical study of smoothing techniques", section 3; KenLM's conventions):

    p_k(w | h) = max(c_k(h w) - D_k(c_k(h w)), 0) / sum_v c_k(h v) + gamma_k(h) * p_{k-1}(w | h')
    gamma_k(h) = (D_k1 N1(h .) + D_k2 N2(h .) + D_k3+ N3+(h .)) / sum_v c_k(h v)
    p_0(w)     = 1 / vocabulary_size            (so every id, even one never seen, has probability > 0)

where h' drops the oldest symbol of h, and a context h never followed by a token in training
(sum_v c_k(h v) = 0) passes p_{k-1} through unchanged. c_k is the raw count at the highest order and for
n-grams that begin with the start symbol (nothing can precede them: KenLM's rule), and otherwise the
continuation count N1+(. h w) (the number of distinct symbols seen before h w). The three discounts per order
come from the count-of-counts n_r of c_k: Y = n1 / (n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2,
D3+ = 3 - 4Y n4/n3. A discount that cannot be estimated (some n_r = 0, as on tiny or deterministic corpora) or
falls outside (0, r) is replaced by plain KN's D = Y, or 0.5 when Y is undefined. The distribution over all
`vocabulary_size` ids sums to 1 for every context (reserved ids 0-3 receive only the uniform share).

Storage: n-grams of each order k get dense ids; an order-k n-gram's key is id(its k-1 newest symbols) *
(vocabulary_size + 1) + its oldest symbol, kept in a sorted int64 array, so lookups are `np.searchsorted` and
fitting is one `np.unique` per order (no Python loop over tokens).

Measured on tiny Shakespeare (nanoGPT's split: first 90% of the characters train = 1,003,854, last 10%
validation = 111,540, scored as one document each; 65 distinct characters mapped to ids 4..68 in sorted order,
vocabulary_size 69), on a 2-core machine shared with other work (load ~4), peak RSS 233 MiB for the whole run:

    nice -n 10 .venv/bin/python -m lstm_model.ngram --text /work/shared/data/tinyshakespeare/input.txt \
        --orders 1 2 3 4 5 6 7 8 10

    order  val nats/char  perplexity  fit s  eval s
        1       3.3473      28.427   0.05    0.01
        2       2.4836      11.984   0.31    0.03
        3       2.0382       7.677   0.43    0.05
        4       1.7191       5.580   0.70    0.05
        5       1.5612       4.765   0.99    0.17
        6       1.5227       4.585   1.34    0.11
        7       1.5166       4.557   1.05    0.20   <- best: DEFAULT_CHARACTER_ORDER
        8       1.5193       4.569   1.04    0.28
       10       1.5226       4.584   2.64    0.40

Order 3 -> 5 gains 0.48 nats/char, 5 -> 7 only 0.045, and beyond 7 it gets slightly worse (sparser contexts,
nothing left to gain). The 5-gram value was also reproduced to 1e-15 by the dictionary-based reference in
tests/test_ngram.py on the first 3,000 validation characters (1.40238 both). For scale, nanoGPT's README
reports a validation loss of 1.4697 nats/char for its small character transformer on this split.

Word scale (synthetic i.i.d. Zipf text, vocabulary 30,000, 5M tokens in 25k documents, order 5: nearly every
high-order n-gram is distinct, so this is a worst case for memory): fit 12-15 s, scoring 248k tokens 1.7-2.8 s,
14.7M n-grams, model arrays 523 MiB (~37 bytes per n-gram per order, ~105 MiB per million training tokens),
peak RSS 1.04 GiB during fit (~190 MiB per million tokens; order 3: 126 MiB model, 0.67 GiB peak). Real text
repeats more, so it needs less.
`to_dict` is plain JSON lists of the same arrays: fine for characters (order 7: ~0.9M n-grams), hundreds
of MB for a word model.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from schemas.names import GENERATIVE_RESERVED_TOKENS, PAD_ID

START_ID = -1  # the start-of-document symbol: a reserved negative id, never a vocabulary id
FORMAT = "kneser_ney_lm/1"  # to_dict / from_dict layout version
DEFAULT_CHARACTER_ORDER = 7  # best measured order for characters (module docstring); 5 is within 0.05 nats/char
FALLBACK_DISCOUNT = 0.5  # when count-of-counts cannot estimate a discount at all (tiny or deterministic corpora)


def _documents(sequences: Iterable[Sequence[int]], vocabulary_size: int) -> list[np.ndarray]:
    """Validated documents as int64 arrays; empty documents are dropped (they have nothing to count or score)."""
    documents = []
    for index, sequence in enumerate(sequences):
        array = np.asarray(sequence)
        if array.ndim != 1:
            raise ValueError(f"document {index}: expected a 1-D sequence of token ids, got shape {array.shape}")
        if array.size == 0:
            continue
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"document {index}: token ids must be integers, got dtype {array.dtype}")
        array = array.astype(np.int64, copy=False)
        low, high = int(array.min()), int(array.max())
        if low <= PAD_ID or high >= vocabulary_size:
            raise ValueError(
                f"document {index}: token ids must lie in [{PAD_ID + 1}, {vocabulary_size}) "
                f"(id {PAD_ID} is padding, never a token); got min {low}, max {high}"
            )
        documents.append(array)
    return documents


def _layout(documents: list[np.ndarray], order: int, start_symbol: int) -> tuple[np.ndarray, np.ndarray]:
    """All documents in one array, each preceded by `order - 1` start symbols.

    Returns (symbols [L] int64, token_positions [T] int64): every position in `token_positions` has its full
    order-1 symbols of history inside its own document, which is what keeps contexts from crossing documents.
    """
    pad = order - 1
    lengths = np.array([document.size for document in documents], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths + pad)[:-1]]).astype(np.int64)  # [documents]
    symbols = np.full(int(lengths.sum()) + pad * len(documents), start_symbol, dtype=np.int64)
    is_token = np.ones(symbols.size, dtype=bool)
    is_token[(starts[:, None] + np.arange(pad, dtype=np.int64)[None, :]).ravel()] = False
    token_positions = np.flatnonzero(is_token)
    symbols[token_positions] = np.concatenate(documents)
    return symbols, token_positions


def _with_predecessors(tokens: np.ndarray, length: int) -> np.ndarray:
    """Sorted positions [n] int64: every token position and the position before it (its context's end).

    A mask rather than np.union1d, whose hash-based unique costs seconds per million positions.
    """
    mask = np.zeros(length, dtype=bool)
    mask[tokens] = True
    mask[tokens - 1] = True
    return np.flatnonzero(mask)


def _estimate_discounts(counts: np.ndarray) -> np.ndarray:
    """[4] float64: D(0) = 0, D1, D2, D3+ from the count-of-counts of one order's (adjusted) counts."""
    n = np.bincount(counts[(counts >= 1) & (counts <= 4)], minlength=5).astype(np.float64)  # n[r] for r = 1..4
    plain = n[1] / (n[1] + 2 * n[2]) if n[1] > 0 and n[2] > 0 else FALLBACK_DISCOUNT
    discounts = np.array([0.0, plain, plain, plain])
    if n[1] > 0 and n[2] > 0:
        y = plain
        estimates = {1: 1 - 2 * y * n[2] / n[1], 2: 2 - 3 * y * n[3] / n[2]}
        if n[3] > 0:
            estimates[3] = 3 - 4 * y * n[4] / n[3]
        for r, value in estimates.items():
            # Strictly inside (0, r): a positive discount keeps gamma > 0 (unseen tokens get mass), D < r keeps
            # every seen n-gram's own share positive.
            if 0 < value < r:
                discounts[r] = value
    return discounts


class KneserNeyLM:
    """Interpolated modified Kneser-Ney language model of orders 1..`order` over ids [0, vocabulary_size).

    `order` is the n of the n-gram (the context is at most order - 1 tokens). Probabilities are per token;
    log probabilities are natural logs (nats).
    """

    def __init__(self, order: int, vocabulary_size: int):
        if int(order) != order or order < 1:
            raise ValueError(f"order must be an integer >= 1, got {order!r}")
        if int(vocabulary_size) != vocabulary_size or vocabulary_size < 2:
            raise ValueError(f"vocabulary_size must be an integer >= 2, got {vocabulary_size!r}")
        self.order = int(order)
        self.vocabulary_size = int(vocabulary_size)
        # Symbols inside the tables: token ids 0..V-1 as they are, START_ID stored as V (arrays cannot index -1).
        self._start_symbol = self.vocabulary_size
        self._stride = self.vocabulary_size + 1
        # Per order k (list index k-1). Order-1 n-grams are symbols, so _keys[0] is empty and unused.
        self._keys: list[np.ndarray] = []  # [grams_k] int64 sorted: id(newest k-1 symbols) * stride + oldest
        self._counts: list[np.ndarray] = []  # [grams_k] int64, c_k of each n-gram (0: seen only as a context)
        # Indexed by the id of the context (an order k-1 n-gram; order 1 has the one empty context, id 0):
        self._denominators: list[np.ndarray] = []  # [contexts_k] int64, sum_v c_k(h v)
        self._n1: list[np.ndarray] = []  # [contexts_k] int64, number of v with c_k(h v) == 1
        self._n2: list[np.ndarray] = []  # [contexts_k] int64, ... == 2
        self._n3plus: list[np.ndarray] = []  # [contexts_k] int64, ... >= 3
        self._discounts: list[np.ndarray] = []  # [4] float64: 0, D1, D2, D3+
        self.training_tokens = 0  # number of tokens `fit` counted

    # ------------------------------------------------------------------ fitting
    def fit(self, sequences: Iterable[Sequence[int]]) -> KneserNeyLM:
        """Count n-grams of orders 1..order over `sequences` (one document each) and estimate the smoothing.

        Replaces any earlier fit. Token ids must lie in [1, vocabulary_size). Returns self.
        """
        documents = _documents(sequences, self.vocabulary_size)
        if not documents:
            raise ValueError("fit needs at least one token")
        order, stride = self.order, self._stride
        symbols, tokens = _layout(documents, order, self._start_symbol)
        # Positions whose n-gram ids are needed below the top order: tokens (as events) and the position before
        # each token (its context). For the top order only the tokens.
        positions = _with_predecessors(tokens, symbols.size) if order > 1 else tokens
        token_at = np.searchsorted(positions, tokens)  # [T] index of each token in `positions`
        context_at = token_at - 1  # the position before a token is always in `positions`, right before it

        keys = [np.zeros(0, dtype=np.int64)]
        raw = [np.bincount(symbols[tokens], minlength=stride).astype(np.int64)]
        prefix = [np.zeros(stride, dtype=np.int64)]  # [grams_k] id of each n-gram's context; all unigrams: 0
        ids = symbols[positions]  # order-1 n-gram ids (= symbols) at `positions`
        for k in range(2, order + 1):
            top = k == order
            parent = ids[token_at] if top else ids  # id of the newest k-1 symbols, at each position
            at = tokens if top else positions
            if (int(parent.max()) + 1) * stride >= 2**63:
                raise OverflowError("n-gram keys would overflow int64; the corpus or vocabulary is too large")
            unique_keys, inverse = np.unique(parent * stride + symbols[at - (k - 1)], return_inverse=True)
            inverse = inverse.reshape(-1)
            events = inverse if top else inverse[token_at]  # [T] order-k n-gram id ending at each token
            gram_context = np.full(unique_keys.size, -1, dtype=np.int64)
            gram_context[events] = ids[context_at]  # the order k-1 n-gram ending just before the token
            keys.append(unique_keys)
            raw.append(np.bincount(events, minlength=unique_keys.size).astype(np.int64))
            prefix.append(gram_context)
            ids = inverse
        del ids, symbols, tokens, positions

        # Counts used by the smoothing: raw at the top order; below it, continuation counts (the number of
        # distinct order k+1 n-grams that extend this one to the left), except raw counts for n-grams that
        # begin with the start symbol, which nothing can precede.
        counts: list[np.ndarray] = [np.zeros(0)] * order
        counts[order - 1] = raw[order - 1]
        for k in range(order - 1, 0, -1):
            seen_above = keys[k][raw[k] > 0]  # order k+1 n-grams that occurred
            continuation = np.bincount(seen_above // stride, minlength=raw[k - 1].size).astype(np.int64)
            if k >= 2:
                begins_with_start = keys[k - 1] % stride == self._start_symbol
                counts[k - 1] = np.where(begins_with_start, raw[k - 1], continuation)
            else:
                counts[k - 1] = continuation
        del raw

        self._keys, self._counts = keys, counts
        self._denominators, self._n1, self._n2, self._n3plus, self._discounts = [], [], [], [], []
        for k in range(1, order + 1):
            count = counts[k - 1]
            present = np.flatnonzero(count > 0)
            context, value = prefix[k - 1][present], count[present]
            contexts = 1 if k == 1 else counts[k - 2].size
            # bincount's float64 weights are exact for sums below 2**53 tokens.
            self._denominators.append(
                np.bincount(context, weights=value.astype(np.float64), minlength=contexts).astype(np.int64)
            )
            self._n1.append(np.bincount(context[value == 1], minlength=contexts).astype(np.int64))
            self._n2.append(np.bincount(context[value == 2], minlength=contexts).astype(np.int64))
            self._n3plus.append(np.bincount(context[value >= 3], minlength=contexts).astype(np.int64))
            self._discounts.append(_estimate_discounts(value))
            prefix[k - 1] = None  # free as we go: the prefixes are the largest temporaries
        self.training_tokens = int(sum(document.size for document in documents))
        return self

    # ------------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if not self._keys:
            raise RuntimeError("the model is not fitted: call fit() or from_dict() first")

    def _lookup(self, k: int, keys: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Order-k n-gram ids of `keys` ([n] int64), -1 where not seen in training or not `valid`."""
        table = self._keys[k - 1]
        if table.size == 0:
            return np.full(keys.shape, -1, dtype=np.int64)
        index = np.minimum(np.searchsorted(table, keys), table.size - 1)
        return np.where(valid & (table[index] == keys), index, -1)

    def _interpolate(self, k: int, context: np.ndarray, gram: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """p_k for each token from its context ids, n-gram ids (-1: unseen) and p_{k-1} (all [T])."""
        i = k - 1
        safe_context = np.maximum(context, 0)
        denominator = np.where(context >= 0, self._denominators[i][safe_context], 0)
        active = denominator > 0  # contexts never followed by a token in training pass p_{k-1} through
        denominator = np.where(active, denominator, 1).astype(np.float64)
        count = np.where(gram >= 0, self._counts[i][np.maximum(gram, 0)], 0)
        discount = self._discounts[i]
        gamma = (
            discount[1] * self._n1[i][safe_context]
            + discount[2] * self._n2[i][safe_context]
            + discount[3] * self._n3plus[i][safe_context]
        ) / denominator
        own = np.maximum(count - discount[np.minimum(count, 3)], 0.0) / denominator
        return np.where(active, own + gamma * lower, lower)

    def _probabilities(self, symbols: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """[T] float64 probability of the symbol at each of `tokens` (positions into `symbols`, each with its
        order-1 symbols of history inside `symbols`, as `_layout` makes them)."""
        self._check_fitted()
        order, stride = self.order, self._stride
        probability = np.full(tokens.size, 1.0 / self.vocabulary_size)
        probability = self._interpolate(1, np.zeros(tokens.size, dtype=np.int64), symbols[tokens], probability)
        if order == 1:
            return probability
        positions = _with_predecessors(tokens, symbols.size)
        token_at = np.searchsorted(positions, tokens)
        context_at = token_at - 1
        ids = symbols[positions]  # order-1 ids; every symbol is a known unigram id
        for k in range(2, order + 1):
            top = k == order
            parent = ids[token_at] if top else ids
            at = tokens if top else positions
            grams = self._lookup(k, np.maximum(parent, 0) * stride + symbols[at - (k - 1)], parent >= 0)
            probability = self._interpolate(k, ids[context_at], grams if top else grams[token_at], probability)
            ids = grams
        return probability

    def _context_window(self, context: Sequence[int]) -> list[int]:
        """The last order-1 symbols of `context` (validated), start symbols first when it is shorter."""
        (history,) = _documents([context], self.vocabulary_size) or [np.zeros(0, dtype=np.int64)]
        width = self.order - 1
        tail = history[max(history.size - width, 0) :].tolist() if width else []
        return [self._start_symbol] * (width - len(tail)) + tail

    def log_prob(self, context: Sequence[int], token: int) -> float:
        """Natural log (nats) of p(token | context).

        `context` is the document so far: the tokens before `token`, oldest first (only the last order-1 are
        used). Fewer than order-1 tokens means `token` is near the start of a document; [] means it is the
        first token. Ids must lie in [1, vocabulary_size); any id there, seen or not, gets a finite value.
        """
        (checked,) = _documents([[token]], self.vocabulary_size)
        window = self._context_window(context)
        symbols = np.array(window + [int(checked[0])], dtype=np.int64)
        return float(np.log(self._probabilities(symbols, np.array([symbols.size - 1]))[0]))

    def distribution(self, context: Sequence[int]) -> np.ndarray:
        """[vocabulary_size] float64 probabilities of every id after `context` (as in `log_prob`); sums to 1.

        Id 0 (padding) and other reserved ids receive their uniform share, so the sum is over all ids.
        """
        window = self._context_window(context)
        rows = np.empty((self.vocabulary_size, self.order), dtype=np.int64)  # one window per candidate id
        rows[:, : self.order - 1] = window
        rows[:, self.order - 1] = np.arange(self.vocabulary_size)
        tokens = np.arange(self.vocabulary_size, dtype=np.int64) * self.order + self.order - 1
        return self._probabilities(rows.ravel(), tokens)

    def nats_per_token(self, sequences: Iterable[Sequence[int]]) -> tuple[float, int]:
        """(mean negative log-likelihood in nats per token, number of tokens scored).

        Every token of every sequence (one document each) is scored; a document's first token is predicted
        from the start context. Divide nats by ln 2 for bits; exp(nats) is the perplexity.
        """
        documents = _documents(sequences, self.vocabulary_size)
        if not documents:
            raise ValueError("nats_per_token needs at least one token")
        symbols, tokens = _layout(documents, self.order, self._start_symbol)
        total = -float(np.log(self._probabilities(symbols, tokens)).sum())
        return total / tokens.size, int(tokens.size)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """JSON-able state (plain ints, floats and lists); `from_dict` restores identical probabilities."""
        self._check_fitted()
        return {
            "format": FORMAT,
            "order": self.order,
            "vocabulary_size": self.vocabulary_size,
            "training_tokens": self.training_tokens,
            "orders": [
                {
                    "keys": self._keys[i].tolist(),
                    "counts": self._counts[i].tolist(),
                    "denominators": self._denominators[i].tolist(),
                    "n1": self._n1[i].tolist(),
                    "n2": self._n2[i].tolist(),
                    "n3plus": self._n3plus[i].tolist(),
                    "discounts": [float(value) for value in self._discounts[i][1:]],  # D1, D2, D3+
                }
                for i in range(self.order)
            ],
        }

    @classmethod
    def from_dict(cls, d: dict) -> KneserNeyLM:
        """The model that `to_dict` described."""
        if d.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} model: format is {d.get('format')!r}")
        model = cls(d["order"], d["vocabulary_size"])
        if len(d["orders"]) != model.order:
            raise ValueError(f"expected {model.order} orders, got {len(d['orders'])}")
        for state in d["orders"]:
            model._keys.append(np.asarray(state["keys"], dtype=np.int64).reshape(-1))
            model._counts.append(np.asarray(state["counts"], dtype=np.int64).reshape(-1))
            model._denominators.append(np.asarray(state["denominators"], dtype=np.int64).reshape(-1))
            model._n1.append(np.asarray(state["n1"], dtype=np.int64).reshape(-1))
            model._n2.append(np.asarray(state["n2"], dtype=np.int64).reshape(-1))
            model._n3plus.append(np.asarray(state["n3plus"], dtype=np.int64).reshape(-1))
            model._discounts.append(np.array([0.0, *state["discounts"]], dtype=np.float64))
        model.training_tokens = int(d.get("training_tokens", 0))
        return model


def fit_and_evaluate(
    train: Iterable[Sequence[int]], evaluate: Iterable[Sequence[int]], vocabulary_size: int, order: int
) -> dict:
    """Fit on `train`, score `evaluate` (one document per sequence); nats per token and wall-clock seconds."""
    started = time.perf_counter()
    model = KneserNeyLM(order, vocabulary_size).fit(train)
    fitted = time.perf_counter()
    nats, tokens = model.nats_per_token(evaluate)
    return {
        "order": order,
        "nats_per_token": nats,
        "perplexity": math.exp(nats),
        "tokens": tokens,
        "fit_seconds": fitted - started,
        "eval_seconds": time.perf_counter() - fitted,
    }


def character_split(text: str, train_fraction: float = 0.9) -> tuple[np.ndarray, np.ndarray, int]:
    """nanoGPT's character split: (train ids [n], validation ids [m], vocabulary_size).

    Each distinct character gets an id from len(GENERATIVE_RESERVED_TOKENS) = 4 up, in sorted order (ids 0-3
    are the reserved tokens); the first `train_fraction` of the characters train, the rest validate.
    """
    characters = sorted(set(text))
    first = len(GENERATIVE_RESERVED_TOKENS)
    lookup = np.zeros(max(map(ord, characters)) + 1, dtype=np.int64)
    lookup[[ord(character) for character in characters]] = np.arange(first, first + len(characters))
    ids = lookup[np.array([ord(character) for character in text], dtype=np.int64)]
    cut = int(len(text) * train_fraction)
    return ids[:cut], ids[cut:], first + len(characters)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--text", type=Path, required=True, help="UTF-8 text file, one document (e.g. tiny Shakespeare)"
    )
    parser.add_argument("--orders", type=int, nargs="+", default=[3, 5, 7])
    parser.add_argument("--train_fraction", type=float, default=0.9)
    args = parser.parse_args(argv)
    train, validation, vocabulary_size = character_split(args.text.read_text(encoding="utf-8"), args.train_fraction)
    for order in args.orders:
        result = fit_and_evaluate([train], [validation], vocabulary_size, order)
        print(json.dumps({**result, "train_tokens": int(train.size), "vocabulary_size": vocabulary_size}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
