"""The in-graph samplers (`lstm_model.sampling`) on toy Markov chains with tiny vocabularies."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from lstm_model.sampling import beam_search, filter_logits, generate, row_uniforms, sample_tokens

NEG_INF = -np.inf


class Chain:
    """A deterministic toy model: logits = first[token] (+ second[previous token], from the state).

    The state is a nest {"prev": [batch, vocab] one-hot of the token fed one step earlier, "steps": [batch]},
    so a sampler that mis-threads or mis-gathers the state gives different logits.
    """

    def __init__(self, first: np.ndarray, second: np.ndarray | None = None):
        self.vocab = first.shape[0]
        self.first = tf.constant(first, tf.float32)  # [vocab, vocab] logits of the next token
        self.second = tf.constant(second if second is not None else np.zeros_like(first), tf.float32)

    def initial_state(self, batch: int, prev: np.ndarray | None = None) -> dict:
        prev = np.zeros(batch, "int32") if prev is None else prev
        return {"prev": tf.one_hot(prev, self.vocab), "steps": tf.zeros([batch], tf.int32)}

    def __call__(self, tokens, state):
        logits = tf.gather(self.first, tokens) + tf.matmul(state["prev"], self.second)
        return logits, {"prev": tf.one_hot(tokens, self.vocab), "steps": state["steps"] + 1}

    def np_logits(self, token: int, prev: int) -> np.ndarray:
        return self.first.numpy()[token] + self.second.numpy()[prev]


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype("float64")
    return x - np.logaddexp.reduce(x)


def random_chain(vocab: int, seed: int, second_order: bool = False, scale: float = 2.0) -> Chain:
    rng = np.random.default_rng(seed)
    first = rng.normal(size=(vocab, vocab)) * scale
    second = rng.normal(size=(vocab, vocab)) * scale if second_order else None
    return Chain(first, second)


def settings(batch: int, temperature=1.0, top_k=0, top_p=1.0, seed=1):
    """generate()'s keyword settings; seed: an int (row i gets seed + i) or one seed per row."""
    seeds = seed + np.arange(batch) if np.isscalar(seed) else np.asarray(seed)
    assert seeds.shape == (batch,)
    return {
        "temperature": tf.constant(temperature, tf.float32),
        "top_k": tf.constant(top_k, tf.int32),
        "top_p": tf.constant(top_p, tf.float32),
        "seed": tf.constant(seeds, tf.int64),
    }


def seeds(*values) -> tf.Tensor:
    return tf.constant(values, tf.int64)


def assert_frequencies_match(ids: np.ndarray, probs: np.ndarray):
    """Chi-square goodness of fit at p = 0.001 (Wilson-Hilferty critical value); probability-0 ids never drawn."""
    probs = np.asarray(probs, "float64")
    counts = np.bincount(ids, minlength=len(probs))
    assert len(counts) == len(probs)
    assert counts[probs == 0].sum() == 0, counts
    support = probs > 0
    expected = probs[support] * len(ids)
    chi2 = np.sum((counts[support] - expected) ** 2 / expected)
    df = support.sum() - 1
    critical = df * (1 - 2 / (9 * df) + 3.09 * np.sqrt(2 / (9 * df))) ** 3
    assert chi2 < critical, (chi2, critical, counts / len(ids), probs)


def kept(logits, temperature=1.0, top_k=0, top_p=1.0) -> np.ndarray:
    """Boolean [batch, vocab]: which tokens survive filter_logits."""
    out = filter_logits(tf.constant(logits, tf.float32), temperature, top_k, top_p).numpy()
    return np.isfinite(out)


# --- filter_logits / sample_tokens -----------------------------------------------------------


def test_top_k_one_is_argmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 40)).astype("float32")
    logits[3, [5, 9]] = 10.0  # a tie: the lower id wins, as in np.argmax
    mask = kept(logits, top_k=1)
    assert mask.sum(axis=1).tolist() == [1] * 16
    np.testing.assert_array_equal(mask.argmax(axis=1), logits.argmax(axis=1))
    for seed in range(3):
        ids = sample_tokens(logits, 1.0, 1, 1.0, tf.range(seed, seed + 16, dtype=tf.int64), seed).numpy()
        np.testing.assert_array_equal(ids, logits.argmax(axis=1))
        assert ids.dtype == np.int32


def test_top_k_keeps_exactly_k_even_with_ties():
    logits = np.zeros((2, 6), "float32")
    logits[1] = [1.0, 3.0, 3.0, 3.0, 0.0, -1.0]
    assert kept(logits, top_k=2).sum(axis=1).tolist() == [2, 2]
    assert kept(logits, top_k=2)[1].tolist() == [False, True, True, False, False, False]
    assert kept(logits, top_k=100).all()  # k > vocab keeps everything
    assert kept(logits, top_k=0).all()


@pytest.mark.parametrize(
    ("top_p", "expected"), [(0.8, 2), (0.81, 3), (0.5, 1), (0.3, 1), (1e-9, 1), (0.95, 3), (0.96, 4), (1.0, 4)]
)
def test_top_p_keeps_the_smallest_set_reaching_p(top_p, expected):
    logits = np.log([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]]).astype("float32")
    mask = kept(logits, top_p=top_p)
    assert mask.sum(axis=1).tolist() == [expected, expected]
    # The kept tokens are the most probable ones.
    np.testing.assert_array_equal(mask[0], np.arange(4) < expected)
    np.testing.assert_array_equal(mask[1], mask[0][::-1])


def test_top_p_edge_cases_keep_the_top_token():
    # All equal: any p keeps at least one token (the lowest id on the tie), never none.
    flat = np.zeros((1, 5), "float32")
    assert kept(flat, top_p=0.1).tolist() == [[True, False, False, False, False]]
    assert kept(flat, top_p=0.4).sum() == 2  # 0.2 + 0.2 reaches 0.4
    # One token holds almost all the mass; -inf logits already present stay out.
    peaked = np.array([[50.0, 0.0, NEG_INF, 0.0]], "float32")
    assert kept(peaked, top_p=0.999).tolist() == [[True, False, False, False]]
    assert kept(peaked, top_p=1.0).tolist() == [[True, True, False, True]]
    # Float32 rounding: softmax(log [0.45, 0.35, 0.2]) gives 0.45 + 0.35 just under 0.8; it still reaches 0.8.
    assert kept(np.log([[0.45, 0.35, 0.2]]), top_p=0.8).sum() == 2
    # Top-p applies after top-k, on the renormalised top-k mass: [0.5, 0.3, 0.15] / 0.95.
    logits = np.log([[0.5, 0.3, 0.15, 0.05]]).astype("float32")
    assert kept(logits, top_k=3, top_p=0.84).sum() == 2  # 0.8 / 0.95 = 0.842
    assert kept(logits, top_k=3, top_p=0.85).sum() == 3
    assert kept(logits, top_k=3, top_p=0.99).sum() == 3  # never more than k
    # ... and after temperature: at T=0.5 the probabilities are [0.5^2, 0.3^2, ...] / Z = [0.685, 0.247, ...].
    assert kept(logits, temperature=0.5, top_p=0.68).sum() == 1
    assert kept(logits, temperature=0.5, top_p=0.9).sum() == 2
    assert kept(logits, top_p=0.68).sum() == 2  # at T=1 the same p needs two tokens


def splitmix64_uniforms(seed: int, step: int, vocab: int) -> np.ndarray:
    """Pure-Python reference of `row_uniforms` for one row (see its docstring)."""
    mask, gamma = 2**64 - 1, 0x9E3779B97F4A7C15

    def mix(x):
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    row_key = mix((seed + gamma) & mask)
    step_key = mix((row_key + (step + 1) * gamma) & mask)
    words = [mix((step_key + (v + 1) * gamma) & mask) for v in range(vocab)]
    return np.maximum(np.array([w >> 11 for w in words], "float64") * 2.0**-53, 2.0**-54)


def test_row_uniforms_are_splitmix64_of_seed_step_and_id():
    row_seeds = [0, 1, -1, 2**63 - 1, -(2**63), 123456789]
    for step in (0, 1, 1000):
        uniforms = row_uniforms(tf.constant(row_seeds, tf.int64), tf.constant(step, tf.int32), 11).numpy()
        assert uniforms.dtype == np.float64 and uniforms.shape == (6, 11)
        expected = np.stack([splitmix64_uniforms(seed, step, 11) for seed in row_seeds])
        np.testing.assert_array_equal(uniforms, expected)
        assert ((uniforms > 0) & (uniforms < 1)).all()
    # Many draws look uniform: mean 1/2, no bin of a 10-bin histogram far off.
    many = row_uniforms(tf.range(2000, dtype=tf.int64), tf.constant(7), 50).numpy().ravel()
    assert abs(many.mean() - 0.5) < 0.005
    assert_frequencies_match(np.minimum((many * 10).astype(int), 9), np.full(10, 0.1))


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_scales_the_distribution(temperature):
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    n = 20000
    logits = np.tile(np.log(probs), (n, 1)).astype("float32")
    # One sample per row: n rows with distinct seeds.
    row_seeds = tf.range(n, dtype=tf.int64) + int(temperature * 1_000_000)
    ids = sample_tokens(logits, temperature, 0, 1.0, row_seeds, tf.constant(3)).numpy()
    expected = probs ** (1 / temperature) / np.sum(probs ** (1 / temperature))
    np.testing.assert_allclose(np.bincount(ids, minlength=4) / n, expected, atol=0.015)
    assert_frequencies_match(ids, expected)


def test_one_seed_draws_afresh_at_every_step():
    # The same rows (and seeds) over many steps: the per-step draws follow the distribution too.
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    rows, steps = 200, 60
    logits = np.tile(np.log(probs), (rows, 1)).astype("float32")
    row_seeds = tf.range(rows, dtype=tf.int64) * 7919
    ids = np.stack([sample_tokens(logits, 1.0, 0, 1.0, row_seeds, step).numpy() for step in range(steps)], axis=1)
    assert_frequencies_match(ids.ravel(), probs)
    assert all(len(set(row.tolist())) > 1 for row in ids)


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p", "expected"),
    [
        (1.0, 3, 1.0, [0.5, 0.3, 0.15, 0.0, 0.0, 0.0]),  # renormalised over the top 3
        (1.0, 0, 0.8, [0.5, 0.3, 0.0, 0.0, 0.0, 0.0]),
        (1.0, 3, 0.84, [0.5, 0.3, 0.0, 0.0, 0.0, 0.0]),
        (100.0, 0, 1.0, None),  # near-uniform over the finite logits; the -inf ones stay out
    ],
)
def test_filtered_tokens_are_never_drawn(temperature, top_k, top_p, expected):
    n = 12000
    base = np.array([*np.log([0.5, 0.3, 0.15, 0.05]), NEG_INF, NEG_INF])  # ids 4, 5: -inf in the logits
    logits = np.tile(base, (n, 1)).astype("float32")
    mask = kept(logits[:1], temperature, top_k, top_p)[0]
    ids = sample_tokens(logits, temperature, top_k, top_p, tf.range(n, dtype=tf.int64) - n, tf.constant(0)).numpy()
    assert mask[ids].all()
    assert set(ids.tolist()) == set(np.flatnonzero(mask).tolist())  # every kept token does come up
    if expected is None:
        weights = np.exp(base / temperature)
        expected = weights / weights.sum()
    assert_frequencies_match(ids, np.asarray(expected) / np.sum(expected))  # renormalised over the kept ids


def test_sample_tokens_same_seed_same_ids():
    logits = np.zeros((64, 10), "float32")
    first = sample_tokens(logits, 1.0, 0, 1.0, tf.range(64, dtype=tf.int64), 0).numpy()
    again = sample_tokens(logits, 1.0, 0, 1.0, tf.range(64, dtype=tf.int64), 0).numpy()
    other_seeds = sample_tokens(logits, 1.0, 0, 1.0, tf.range(64, dtype=tf.int64) + 64, 0).numpy()
    other_step = sample_tokens(logits, 1.0, 0, 1.0, tf.range(64, dtype=tf.int64), 1).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other_seeds)
    assert not np.array_equal(first, other_step)
    # Equal seeds on equal logits draw equal ids, wherever the rows sit.
    same = sample_tokens(logits, 1.0, 0, 1.0, tf.fill([64], tf.constant(5, tf.int64)), 0).numpy()
    assert len(set(same.tolist())) == 1


def test_sample_tokens_rows_do_not_depend_on_the_batch():
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(7, 50)).astype("float32") * 2
    row_seeds = np.array([3, -4, 2**40, 3, 17, 0, 99], "int64")
    for step in (0, 5):
        batch = sample_tokens(logits, 0.9, 20, 0.95, tf.constant(row_seeds), step).numpy()
        alone = [
            sample_tokens(logits[i : i + 1], 0.9, 20, 0.95, tf.constant(row_seeds[i : i + 1]), step) for i in range(7)
        ]
        np.testing.assert_array_equal(batch, np.concatenate([ids.numpy() for ids in alone]))
        order = rng.permutation(7)
        shuffled = sample_tokens(logits[order], 0.9, 20, 0.95, tf.constant(row_seeds[order]), step).numpy()
        np.testing.assert_array_equal(shuffled, batch[order])


def test_a_seed_per_row_is_required():
    with pytest.raises(tf.errors.InvalidArgumentError, match="one int64 seed per row"):
        sample_tokens(np.zeros((3, 5), "float32"), 1.0, 0, 1.0, seeds(1, 2), 0)
    chain = counting_chain(5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="one int64 seed per row"):
        generate(chain, chain.initial_state(3), np.zeros(3, "int32"), 4, **settings(2))


# --- generate ------------------------------------------------------------------------------


def numpy_greedy(chain: Chain, first_tokens, prev, steps: int, stop_ids=()):
    """Reference greedy decoding: (token_ids [batch, steps], num_tokens, log_prob)."""
    token_ids = np.zeros((len(first_tokens), steps), "int32")
    num_tokens = np.zeros(len(first_tokens), "int32")
    log_prob = np.zeros(len(first_tokens))
    for row, (token, previous) in enumerate(zip(first_tokens, prev, strict=True)):
        for t in range(steps):
            step_log_probs = log_softmax(chain.np_logits(token, previous))
            chosen = int(np.argmax(step_log_probs))
            token_ids[row, t] = chosen
            log_prob[row] += step_log_probs[chosen]
            if chosen in stop_ids:
                break
            num_tokens[row] += 1
            previous, token = token, chosen
    return token_ids, num_tokens, log_prob


def test_greedy_generate_matches_numpy_and_log_prob_is_the_model_score():
    chain = random_chain(12, seed=1, second_order=True)
    first_tokens = np.array([0, 3, 7, 11], "int32")
    prev = np.array([1, 2, 3, 4], "int32")
    out = generate(chain, chain.initial_state(4, prev), first_tokens, 9, **settings(4, top_k=1))
    token_ids, num_tokens, log_prob = numpy_greedy(chain, first_tokens, prev, 9)
    np.testing.assert_array_equal(out["token_ids"].numpy(), token_ids)
    np.testing.assert_array_equal(out["num_tokens"].numpy(), num_tokens)
    np.testing.assert_allclose(out["log_prob"].numpy(), log_prob, rtol=1e-5)
    assert out["token_ids"].dtype == tf.int32 and out["num_tokens"].dtype == tf.int32
    assert out["log_prob"].dtype == tf.float32


def test_log_prob_ignores_temperature_and_filters():
    chain = random_chain(8, seed=2)
    first_tokens = np.arange(8, dtype="int32")
    out = generate(
        chain, chain.initial_state(8), first_tokens, 6, **settings(8, temperature=0.7, top_k=3, top_p=0.9, seed=9)
    )
    ids = out["token_ids"].numpy()
    expected = np.zeros(8)
    for row in range(8):
        token = first_tokens[row]
        for t in range(6):
            expected[row] += log_softmax(chain.np_logits(token, 0))[ids[row, t]]
            token = ids[row, t]
    np.testing.assert_allclose(out["log_prob"].numpy(), expected, rtol=1e-5)


def test_same_seed_same_output_different_seed_different_output():
    chain = random_chain(10, seed=3, scale=0.3)  # near-uniform: many plausible continuations
    state = chain.initial_state(8)
    first_tokens = np.arange(8, dtype="int32")
    a = generate(chain, state, first_tokens, 20, **settings(8, seed=1))
    b = generate(chain, state, first_tokens, 20, **settings(8, seed=1))
    c = generate(chain, state, first_tokens, 20, **settings(8, seed=101))
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    # Every row changes with its seed, ...
    assert all(not np.array_equal(x, y) for x, y in zip(a["token_ids"].numpy(), c["token_ids"].numpy(), strict=True))
    # ... and rows with the same prompt but different seeds differ.
    same_prompt = generate(chain, state, np.zeros(8, "int32"), 20, **settings(8, seed=1))["token_ids"].numpy()
    assert len({tuple(row) for row in same_prompt.tolist()}) == 8
    # Each step draws afresh: under a chain whose every step is the same uniform distribution,
    # a row is not one token repeated.
    uniform = Chain(np.zeros((10, 10)))
    ids = generate(uniform, uniform.initial_state(4), np.zeros(4, "int32"), 12, **settings(4))["token_ids"].numpy()
    assert all(len(set(row.tolist())) > 1 for row in ids)


def two_basin_chain() -> Chain:
    """Ids 0-3 only lead to 0-3 (a row there never stops); ids 4-6 lead to 4-7, and 7 is the stop id."""
    rng = np.random.default_rng(10)
    first = np.full((8, 8), -30.0)
    first[:4, :4] = rng.normal(size=(4, 4))
    first[4:, 4:] = rng.normal(size=(4, 4))
    first[4:, 7] -= 1.0  # stop, but not at once
    return Chain(first, rng.normal(size=(8, 8)) * 0.5)


def test_a_rows_output_does_not_depend_on_its_batch():
    """Same prompt + same seed = same text, alone or among any other rows (as RunInference batches vary)."""
    chain = two_basin_chain()
    stop, max_new = [7], 20
    sampling = {"temperature": 0.9, "top_k": 6, "top_p": 0.95}
    # The rows under test: (first token, previous token, seed).
    targets = [(5, 2, 1234), (1, 6, -77)]

    def run(rows):
        first, prev, row_seeds = (np.array(column) for column in zip(*rows, strict=True))
        out = generate(
            chain,
            chain.initial_state(len(rows), prev.astype("int32")),
            first.astype("int32"),
            max_new,
            stop_ids=stop,
            **settings(len(rows), seed=row_seeds, **sampling),
        )
        return {key: value.numpy() for key, value in out.items()}

    alone = [run([target]) for target in targets]
    assert alone[0]["num_tokens"][0] < max_new  # the first target stops early when alone ...
    assert alone[1]["num_tokens"][0] == max_new  # ... the second never stops
    batch_of_3 = run([(4, 4, 1), targets[0], targets[1]])
    batch_of_7 = run(
        [
            (5, 2, 1235),  # the same prompt as target 0, another seed
            (6, 0, 1234),  # another prompt, target 0's seed
            targets[1],
            (0, 3, 1234),
            targets[0],  # ... while this batch runs all 20 steps
            (1, 6, 2**62),
            targets[0],  # a duplicate row
        ]
    )
    for result, positions in ((batch_of_3, [1, 2]), (batch_of_7, [4, 2])):
        for target, position in enumerate(positions):
            for key in ("token_ids", "num_tokens"):
                np.testing.assert_array_equal(result[key][position], alone[target][key][0])
            np.testing.assert_allclose(result["log_prob"][position], alone[target]["log_prob"][0], rtol=1e-6)
    np.testing.assert_array_equal(batch_of_7["token_ids"][6], batch_of_7["token_ids"][4])
    # The neighbour with target 0's prompt and another seed got another text. (A neighbour with
    # target 0's seed and another prompt shares its Gumbel noise, so its text may well coincide.)
    assert not np.array_equal(batch_of_7["token_ids"][0], batch_of_7["token_ids"][4])


def counting_chain(vocab: int = 8) -> Chain:
    """token i -> i + 1 with probability ~1 (the last id -> 0)."""
    first = np.full((vocab, vocab), -20.0)
    first[np.arange(vocab), (np.arange(vocab) + 1) % vocab] = 20.0
    return Chain(first)


def test_stop_ids_stop_rows_independently():
    chain = counting_chain(8)
    first_tokens = np.array([1, 3, 5, 6], "int32")
    out = generate(chain, chain.initial_state(4), first_tokens, 4, stop_ids=tf.constant([7]), **settings(4))
    np.testing.assert_array_equal(
        out["token_ids"].numpy(),
        [
            [2, 3, 4, 5],  # never reaches 7 within 4 tokens
            [4, 5, 6, 7],  # stops on the last step
            [6, 7, 0, 0],  # padding after the stop id
            [7, 0, 0, 0],  # stops at once
        ],
    )
    np.testing.assert_array_equal(out["num_tokens"].numpy(), [4, 3, 1, 0])
    # Stopped rows stop accumulating log-prob: each emitted token (stop id included) costs ~0.
    assert np.all(out["log_prob"].numpy() > -1e-3)


def test_several_stop_ids_and_early_exit():
    chain = counting_chain(8)
    calls = []

    def counting_step(tokens, state):
        calls.append(1)
        return chain(tokens, state)

    out = generate(
        counting_step, chain.initial_state(2), np.array([1, 4], "int32"), 50, stop_ids=[3, 6], **settings(2, top_k=1)
    )
    np.testing.assert_array_equal(out["token_ids"].numpy()[:, :3], [[2, 3, 0], [5, 6, 0]])
    assert out["token_ids"].shape == (2, 50)
    assert not out["token_ids"].numpy()[:, 2:].any()
    np.testing.assert_array_equal(out["num_tokens"].numpy(), [1, 1])
    assert len(calls) == 2  # eager while_loop: the loop ended once both rows had stopped


def test_zero_new_tokens():
    chain = counting_chain(5)
    out = generate(chain, chain.initial_state(3), np.array([0, 1, 2], "int32"), 0, **settings(3))
    assert out["token_ids"].shape == (3, 0)
    np.testing.assert_array_equal(out["num_tokens"].numpy(), [0, 0, 0])
    np.testing.assert_array_equal(out["log_prob"].numpy(), [0.0, 0.0, 0.0])


# --- beam search ---------------------------------------------------------------------------


@pytest.mark.parametrize("stop_ids", [None, [2], [0, 5]])
def test_beam_width_one_is_greedy(stop_ids):
    chain = random_chain(9, seed=4, second_order=True)
    first_tokens = np.arange(9, dtype="int32")
    prev = (np.arange(9) * 2 % 9).astype("int32")
    state = chain.initial_state(9, prev)
    greedy = generate(chain, state, first_tokens, 7, stop_ids=stop_ids, **settings(9, top_k=1))
    beam = beam_search(chain, state, first_tokens, 7, beam_width=1, stop_ids=stop_ids)
    np.testing.assert_array_equal(beam["token_ids"].numpy(), greedy["token_ids"].numpy())
    np.testing.assert_array_equal(beam["num_tokens"].numpy(), greedy["num_tokens"].numpy())
    np.testing.assert_allclose(beam["log_prob"].numpy(), greedy["log_prob"].numpy(), rtol=1e-6)
    if stop_ids:
        assert (greedy["num_tokens"].numpy() < 7).any()  # the stop path was exercised


def test_beam_finds_the_more_probable_sequence_greedy_misses():
    # ids: 0 pad, 1 start, 2 "a", 3 "b", 4 "c", 5-8 fillers, 9 EOS.
    vocab, eos = 10, 9
    probs = np.full((vocab, vocab), 1e-6)
    probs[1, 2], probs[1, 3] = 0.6, 0.4  # greedy takes "a" ...
    probs[2, 5:9] = 0.25  # ... whose continuations are all unlikely,
    probs[3, 4] = 0.99  # while "b" is almost surely followed by "c".
    probs[[4, 5, 6, 7, 8], eos] = 0.99
    probs[eos, 0] = 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    chain = Chain(np.log(probs))
    state, first_tokens = chain.initial_state(2), np.array([1, 1], "int32")
    greedy = generate(chain, state, first_tokens, 5, stop_ids=[eos], **settings(2, top_k=1))
    beam = beam_search(chain, state, first_tokens, 5, beam_width=2, stop_ids=[eos])
    assert greedy["token_ids"].numpy()[0].tolist() == [2, 5, 9, 0, 0]
    assert beam["token_ids"].numpy().tolist() == [[3, 4, 9, 0, 0]] * 2
    np.testing.assert_array_equal(beam["num_tokens"].numpy(), [2, 2])
    np.testing.assert_allclose(beam["log_prob"].numpy(), np.log(probs[1, 3] * probs[3, 4] * probs[4, eos]), rtol=1e-5)
    assert (beam["log_prob"].numpy() > greedy["log_prob"].numpy()).all()


def exhaustive_best(chain: Chain, token: int, prev: int, steps: int, stop: int, length_penalty: float):
    """The best continuation over every sequence (ending at the stop id, or `steps` long)."""
    best = (-np.inf, None, None)
    for length in range(1, steps + 1):
        for seq in itertools.product(range(chain.vocab), repeat=length):
            if stop in seq[:-1] or (length < steps and seq[-1] != stop):
                continue
            lp, (t, p) = 0.0, (token, prev)
            for chosen in seq:
                lp += log_softmax(chain.np_logits(t, p))[chosen]
                t, p = chosen, t
            score = lp / length**length_penalty
            if score > best[0]:
                best = (score, list(seq), lp)
    return best


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_wide_beam_is_exhaustive_search(length_penalty):
    vocab, steps, stop = 4, 3, 3
    chain = random_chain(vocab, seed=5, second_order=True, scale=1.5)
    first_tokens = np.array([0, 1, 2, 3], "int32")
    prev = np.array([2, 0, 3, 1], "int32")
    out = beam_search(
        chain,
        chain.initial_state(4, prev),
        first_tokens,
        steps,
        beam_width=vocab ** (steps - 1),
        length_penalty=length_penalty,
        stop_ids=[stop],
    )
    for row in range(4):
        _, seq, lp = exhaustive_best(chain, first_tokens[row], prev[row], steps, stop, length_penalty)
        expected_ids = seq + [0] * (steps - len(seq))
        assert out["token_ids"].numpy()[row].tolist() == expected_ids
        assert out["num_tokens"].numpy()[row] == len(seq) - (seq[-1] == stop)
        np.testing.assert_allclose(out["log_prob"].numpy()[row], lp, rtol=1e-5)


# --- graph mode and SavedModel ---------------------------------------------------------------


class Generator(tf.Module):
    """What an export wraps: the chain's matrix as a variable, sampling settings as tensors."""

    def __init__(self, chain: Chain):
        super().__init__()
        self.vocab = chain.vocab
        self.first = tf.Variable(chain.first)
        self.second = tf.Variable(chain.second)

    def step(self, tokens, state):
        logits = tf.gather(self.first, tokens) + tf.matmul(state[0], self.second)
        return logits, [tf.one_hot(tokens, self.vocab), state[1] + 1.0]

    def state(self, prev):
        return [tf.one_hot(prev, self.vocab), tf.zeros([tf.shape(prev)[0], 3])]

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int32, name="last_token"),
            tf.TensorSpec([None], tf.int32, name="prev_token"),
            tf.TensorSpec([], tf.int32, name="max_new_tokens"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="top_k"),
            tf.TensorSpec([], tf.float32, name="top_p"),
            tf.TensorSpec([None], tf.int64, name="seed"),
            tf.TensorSpec([None], tf.int32, name="stop_ids"),
        ]
    )
    def generate(self, last_token, prev_token, max_new_tokens, temperature, top_k, top_p, seed, stop_ids):
        return generate(
            self.step,
            self.state(prev_token),
            last_token,
            max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            stop_ids=stop_ids,
        )

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([], tf.int32),
        ]
    )
    def beam(self, last_token, prev_token, max_new_tokens):
        return beam_search(
            self.step, self.state(prev_token), last_token, max_new_tokens, beam_width=3, stop_ids=tf.constant([4])
        )


def test_generate_and_beam_search_survive_saved_model(tmp_path):
    chain = random_chain(7, seed=6, second_order=True, scale=1.0)
    module = Generator(chain)
    last, prev = tf.constant([0, 1, 2, 5, 6]), tf.constant([3, 3, 1, 0, 2])
    args = (last, prev, tf.constant(12), tf.constant(0.8), tf.constant(4), tf.constant(0.95))
    seed, stop = tf.constant([11, 12, -13, 2**50, 15], tf.int64), tf.constant([4])

    eager = generate(
        chain,
        chain.initial_state(5, prev.numpy()),
        last,
        12,
        temperature=0.8,
        top_k=4,
        top_p=0.95,
        seed=seed,
        stop_ids=stop,
    )
    traced = module.generate(*args, seed, stop)
    for key in eager:
        np.testing.assert_allclose(traced[key].numpy(), eager[key].numpy(), rtol=1e-5)

    tf.saved_model.save(module, str(tmp_path / "sampler"))
    loaded = tf.saved_model.load(str(tmp_path / "sampler"))
    restored = loaded.generate(*args, seed, stop)
    for key in eager:
        np.testing.assert_allclose(restored[key].numpy(), eager[key].numpy(), rtol=1e-5)
    # Settings are live tensors in the exported graph: greedy, another batch size, no stop ids.
    greedy = loaded.generate(
        last[:2],
        prev[:2],
        tf.constant(5),
        tf.constant(1.0),
        tf.constant(1),
        tf.constant(1.0),
        seed[:2],
        tf.zeros([0], tf.int32),
    )
    expected, _, _ = numpy_greedy(chain, last.numpy()[:2], prev.numpy()[:2], 5)
    np.testing.assert_array_equal(greedy["token_ids"].numpy(), expected)
    # A row's sampled text is the same in any batch, in the exported graph too.
    rows = tf.constant([3, 1])
    subset = loaded.generate(*(tf.gather(x, rows) for x in (last, prev)), *args[2:], tf.gather(seed, rows), stop)
    for key in eager:
        np.testing.assert_array_equal(subset[key].numpy(), tf.gather(restored[key], rows).numpy())

    beam_eager = beam_search(chain, chain.initial_state(5, prev.numpy()), last, 6, beam_width=3, stop_ids=[4])
    beam_restored = loaded.beam(last, prev, tf.constant(6))
    for key in beam_eager:
        np.testing.assert_allclose(beam_restored[key].numpy(), beam_eager[key].numpy(), rtol=1e-5)
