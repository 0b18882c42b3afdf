"""Token samplers that run inside a TensorFlow graph: greedy, top-k, top-p (nucleus) and beam search.

Everything here is pure TensorFlow, so an exported SavedModel can generate text with no Python
on the serving side. The decoding loop is a `tf.while_loop` whose trip count is a tensor
(`max_new_tokens`), and every setting (temperature, top_k, top_p, seed) may be a tensor fed at
call time; the batch size may be unknown (None) at trace time.

Sampling is seeded per row: `generate` takes one int64 seed per row, and its random draws come
from a counter-based hash of (row seed, step, token id) (`row_uniforms`), not from a batch-wide
RNG. So "same prompt + same seed = same text" holds whatever else shares the batch, e.g. under
Beam's RunInference, whose batching differs from run to run.

The model is seen only through a step function (the same contract for every sampler):

    step_fn(tokens, state) -> (logits, new_state)
        tokens     [batch] int32            the token fed at this step, one per row
        state      any nest of tensors, each with a leading batch dimension,
                   e.g. [[h, c] per LSTM layer], each [batch, units]
        logits     [batch, vocab] float     next-token logits (cast to float32 here)
        new_state  the same nest structure, dtypes and shapes (batch dimension included) as `state`

The caller runs the prompt through the model first to get `initial_state`, and passes the
last prompt token of each row as `first_tokens`; generation starts by feeding those. The
`batch` seen by `step_fn` is the caller's batch for `generate` and `batch * beam_width` for
`beam_search` (rows tiled as b * beam_width + w).

Conventions shared by `generate` and `beam_search`:
  * a row stops when it emits an id in `stop_ids` (e.g. [EOS]); the stop id stays in
    `token_ids` at position `num_tokens`, and every later position is 0 (padding);
  * `num_tokens` counts the generated tokens before the stop id (or all of them if none);
  * `log_prob` sums the model's unfiltered, temperature-1 log-softmax of every emitted token,
    the stop id included (so it is the log-probability of the whole continuation, ending
    included; temperature, top-k and top-p shape the choice, never the score).

Samplers are designed after keras_hub's (one `next` step driven by greedy / top-k / top-p /
beam samplers) and nanoGPT's `generate()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

StepFn = Callable[[tf.Tensor, Any], tuple[tf.Tensor, Any]]

# A cumulative probability within this much of top_p counts as reaching it: float32 softmax and
# cumsum errors (~1e-7 per term) must not flip "0.5 + 0.3 reaches 0.8" into keeping a third token.
_TOP_P_TOLERANCE = 1e-6


def filter_logits(logits: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
    """[batch, vocab] float32 logits -> [batch, vocab] log-weights, filtered-out tokens set to -inf.

    temperature: scalar float > 0; the logits are divided by it.
    top_k: scalar int32; 0 = off, else keep the k largest (ties broken towards the lower id,
        so exactly min(k, vocab) tokens survive; top_k=1 is argmax, i.e. greedy).
    top_p: scalar float in (0, 1]; 1.0 = off, else keep the smallest set of most probable tokens
        whose probability (after temperature and top-k, renormalised) sums to >= top_p
        (within 1e-6); the most probable token is always kept.
    """
    logits = tf.cast(logits, tf.float32)
    scaled = logits / tf.cast(temperature, tf.float32)
    top_k = tf.cast(top_k, tf.int32)
    top_p = tf.cast(top_p, tf.float32)

    def unfiltered() -> tf.Tensor:
        return scaled

    def filtered() -> tf.Tensor:
        batch = tf.shape(scaled)[0]
        vocab = tf.shape(scaled)[1]
        # Top-p only ever looks inside the top-k set, so one partial sort of k candidates serves
        # both filters (a full sort only when top-k is off).
        k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
        sorted_logits, sorted_ids = tf.math.top_k(scaled, k=k)  # [batch, k] each, descending
        probs = tf.nn.softmax(sorted_logits, axis=-1)  # renormalised over the top-k set
        # Probability mass strictly before each candidate: a candidate is needed while the
        # tokens ranked above it have not yet reached top_p. Rank 0 is always kept.
        mass_before = tf.math.cumsum(probs, axis=-1, exclusive=True)  # [batch, k]
        keep = mass_before < top_p - _TOP_P_TOLERANCE
        keep = tf.logical_or(keep, tf.range(k)[tf.newaxis, :] == 0)
        keep = tf.logical_or(keep, top_p >= 1.0)
        # Scatter the sorted keep-mask back to vocabulary order: indices [batch, k, 2] = (row, id).
        rows = tf.broadcast_to(tf.range(batch)[:, tf.newaxis], tf.shape(sorted_ids))
        indices = tf.stack([rows, sorted_ids], axis=-1)
        kept = tf.scatter_nd(indices, tf.cast(keep, tf.int32), tf.shape(scaled)) > 0  # [batch, vocab]
        return tf.where(kept, scaled, tf.constant(-float("inf"), tf.float32))

    # Plain sampling (both filters off) skips the sort entirely.
    return tf.cond(tf.logical_or(top_k > 0, top_p < 1.0), filtered, unfiltered)


# Counter-based random bits (splitmix64, Steele, Lea & Flood 2014): every uniform is a pure
# function of (row seed, step, vocabulary id), computed with exact integer ops, so a row's draws
# cannot depend on the batch it shares, on the batch size, or on any RNG state.
_GOLDEN_GAMMA = 0x9E3779B97F4A7C15  # splitmix64's increment (odd; 2**64 / golden ratio)
_MIX_MULTIPLIERS = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)  # splitmix64's finaliser
_MIX_SHIFTS = (30, 27, 31)


def _mix64(x: tf.Tensor) -> tf.Tensor:
    """The splitmix64 finaliser on uint64 (a bijection with full avalanche; multiplies wrap mod 2**64)."""
    shift_1, shift_2, shift_3 = (tf.constant(shift, tf.uint64) for shift in _MIX_SHIFTS)
    multiplier_1, multiplier_2 = (tf.constant(m, tf.uint64) for m in _MIX_MULTIPLIERS)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, shift_1)) * multiplier_1
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, shift_2)) * multiplier_2
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, shift_3))


def _as_row_seeds(seeds: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
    """Any int dtype, [batch] (one per row) -> [batch] int64, checked against the batch size."""
    seeds = tf.reshape(tf.cast(seeds, tf.int64), [-1])
    check = tf.debugging.assert_equal(
        tf.size(seeds), batch, message="seed must hold one int64 seed per row: shape [batch]"
    )
    with tf.control_dependencies([check]):
        return tf.identity(seeds)


def row_uniforms(seeds: tf.Tensor, step: tf.Tensor, vocab: tf.Tensor) -> tf.Tensor:
    """[batch] int64 seeds, scalar int32 step, scalar vocab -> [batch, vocab] float64 uniforms in (0, 1).

    Three nested splitmix64 streams: the row's stream (from its seed) gives one key per step,
    and that key's stream gives one 64-bit word per vocabulary id:
        row_key  = mix(seed + gamma)                  (seed as uint64, two's complement)
        step_key = mix(row_key + (step + 1) * gamma)
        bits     = mix(step_key + (id + 1) * gamma)
    where mix is the splitmix64 finaliser and all arithmetic wraps mod 2**64. The uniform is
    the top 53 bits / 2**53, raised to 2**-54 when it is 0 (the largest is 1 - 2**-53 < 1).
    Entry [i, v] depends only on (seeds[i], step, v): never on other rows or the batch size.
    """
    gamma = tf.constant(_GOLDEN_GAMMA, tf.uint64)
    seeds = tf.cast(tf.cast(seeds, tf.int64), tf.uint64)  # negative seeds wrap, as in two's complement
    step = tf.cast(tf.cast(step, tf.int64), tf.uint64)
    ids = tf.cast(tf.range(tf.cast(vocab, tf.int64), dtype=tf.int64), tf.uint64)
    row_key = _mix64(seeds + gamma)
    step_key = _mix64(row_key + (step + 1) * gamma)  # [batch]
    bits = _mix64(step_key[:, tf.newaxis] + ((ids + 1) * gamma)[tf.newaxis, :])  # [batch, vocab]
    top_53 = tf.bitwise.right_shift(bits, tf.constant(11, tf.uint64))
    uniforms = tf.cast(top_53, tf.float64) * (2.0**-53)
    return tf.maximum(uniforms, 2.0**-54)


def sample_tokens(
    logits: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor, seeds: tf.Tensor, step: tf.Tensor
) -> tf.Tensor:
    """[batch, vocab] logits -> [batch] int32 ids drawn from `filter_logits(...)`, one seed per row.

    seeds: [batch] int64 (any int dtype is cast), one per row. step: scalar int32 (the decoding
    step, so that one seed yields a fresh draw at every step).
    Exact sampling by the Gumbel-max trick: argmax(log_weights + G) with G = -log(-log(U)) and U
    from `row_uniforms(seeds, step, vocab)`, in float64. Row i's id depends only on seeds[i],
    step and row i of `logits`, so a row draws the same id alone or in any batch, and the same
    inputs always give the same ids. Filtered-out tokens (-inf) are never drawn (G is finite).
    """
    log_weights = filter_logits(logits, temperature, top_k, top_p)
    seeds = _as_row_seeds(seeds, tf.shape(log_weights)[0])
    uniforms = row_uniforms(seeds, step, tf.shape(log_weights)[1])
    gumbel = -tf.math.log(-tf.math.log(uniforms))  # finite: U is in [2**-54, 1 - 2**-53]
    return tf.argmax(tf.cast(log_weights, tf.float64) + gumbel, axis=-1, output_type=tf.int32)


def _as_stop_ids(stop_ids: tf.Tensor | None) -> tf.Tensor:
    """None or ids of any int dtype / shape -> [num_stop] int32 (possibly empty)."""
    if stop_ids is None:
        return tf.zeros([0], tf.int32)
    return tf.reshape(tf.cast(stop_ids, tf.int32), [-1])


def _is_stop(tokens: tf.Tensor, stop_ids: tf.Tensor) -> tf.Tensor:
    """tokens [...] int32, stop_ids [num_stop] -> [...] bool (False everywhere if there are none)."""
    return tf.reduce_any(tf.equal(tokens[..., tf.newaxis], stop_ids), axis=-1)


def _batch_invariant(tensor: tf.Tensor) -> tf.TensorShape:
    """The loop shape invariant of a state tensor: its own shape with the batch dimension left open."""
    shape = tensor.shape
    if shape.rank is None or shape.rank == 0:
        return shape
    return tf.TensorShape([None]).concatenate(shape[1:])


def _as_tensor_nest(state: Any) -> Any:
    return tf.nest.map_structure(tf.convert_to_tensor, state)


def generate(
    step_fn: StepFn,
    initial_state: Any,
    first_tokens: tf.Tensor,
    max_new_tokens: tf.Tensor,
    *,
    temperature: tf.Tensor,
    top_k: tf.Tensor,
    top_p: tf.Tensor,
    seed: tf.Tensor,
    stop_ids: tf.Tensor | None = None,
) -> dict[str, tf.Tensor]:
    """Autoregressive sampling: up to `max_new_tokens` tokens per row after `first_tokens`.

    step_fn / initial_state / first_tokens [batch] int32: see the module docstring.
    max_new_tokens: scalar int32 (>= 0). temperature: scalar float > 0 (callers validate; greedy
    is top_k=1). top_k, top_p: as in `filter_logits`. seed: [batch] int64, one per row; step t
    draws with `sample_tokens(..., seed, step=t)`. The result is a pure function of the inputs,
    and row by row: a row's output depends only on its own prompt state, first token and seed
    (plus the shared settings), never on which other rows share its batch, as long as `step_fn`
    gives each row bit-identical logits whatever the batch (a GPU matmul may pick another
    kernel for another batch size; an ulp of difference flips a draw only on a near-tie).
    Rows with equal seeds share their random draws (the same Gumbel noise), so their texts are
    strongly correlated even for different prompts: give unrelated rows different seeds (e.g.
    derived from a user seed and a stable row or prompt id, never from the position in a batch).
    stop_ids: [num_stop] int ids that end a row (None: rows run to max_new_tokens).
    The loop ends early once every row has stopped.

    Returns {"token_ids": [batch, max_new_tokens] int32 (stop id kept, 0 after it),
             "num_tokens": [batch] int32 (excluding the stop id),
             "log_prob": [batch] float32 (unfiltered temperature-1 log-probs, stop id included)}.
    """
    first_tokens = tf.cast(first_tokens, tf.int32)
    max_new_tokens = tf.cast(max_new_tokens, tf.int32)
    temperature = tf.cast(temperature, tf.float32)
    top_k = tf.cast(top_k, tf.int32)
    top_p = tf.cast(top_p, tf.float32)
    stop_ids = _as_stop_ids(stop_ids)
    initial_state = _as_tensor_nest(initial_state)

    batch = tf.shape(first_tokens)[0]
    seed = _as_row_seeds(seed, batch)
    row_ids = tf.range(batch)

    def body(t, tokens, state, token_ids, done, num_tokens, log_prob):
        logits, new_state = step_fn(tokens, state)
        logits = tf.cast(logits, tf.float32)  # [batch, vocab]
        chosen = sample_tokens(logits, temperature, top_k, top_p, seed, t)  # [batch]
        # Score under the model itself, not the filtered/tempered distribution we drew from.
        chosen_log_prob = tf.gather(tf.nn.log_softmax(logits, axis=-1), chosen, batch_dims=1)  # [batch]
        active = tf.logical_not(done)
        stopping = tf.logical_and(active, _is_stop(chosen, stop_ids))
        emitted = tf.where(active, chosen, 0)  # rows stopped earlier emit padding
        # Write column t: indices [batch, 2] = (row, t).
        token_ids = tf.tensor_scatter_nd_update(token_ids, tf.stack([row_ids, tf.fill([batch], t)], axis=1), emitted)
        log_prob += tf.where(active, chosen_log_prob, 0.0)
        num_tokens += tf.cast(tf.logical_and(active, tf.logical_not(stopping)), tf.int32)
        done = tf.logical_or(done, stopping)
        return t + 1, emitted, new_state, token_ids, done, num_tokens, log_prob

    def cond(t, tokens, state, token_ids, done, num_tokens, log_prob):
        return tf.logical_and(t < max_new_tokens, tf.logical_not(tf.reduce_all(done)))

    loop_vars = (
        tf.constant(0, tf.int32),
        first_tokens,
        initial_state,
        tf.zeros(tf.stack([batch, max_new_tokens]), tf.int32),
        tf.zeros([batch], tf.bool),
        tf.zeros([batch], tf.int32),
        tf.zeros([batch], tf.float32),
    )
    shape_invariants = (
        tf.TensorShape([]),
        tf.TensorShape([None]),
        tf.nest.map_structure(_batch_invariant, initial_state),
        tf.TensorShape([None, None]),
        tf.TensorShape([None]),
        tf.TensorShape([None]),
        tf.TensorShape([None]),
    )
    _, _, _, token_ids, _, num_tokens, log_prob = tf.while_loop(
        cond, body, loop_vars, shape_invariants=shape_invariants
    )
    return {"token_ids": token_ids, "num_tokens": num_tokens, "log_prob": log_prob}


def beam_search(
    step_fn: StepFn,
    initial_state: Any,
    first_tokens: tf.Tensor,
    max_new_tokens: tf.Tensor,
    *,
    beam_width: int,
    length_penalty: float = 0.0,
    stop_ids: tf.Tensor | None = None,
) -> dict[str, tf.Tensor]:
    """Beam search over the same `step_fn`; returns the best hypothesis per row.

    The state and tokens are tiled to [batch * beam_width, ...] (row b, beam w at b * beam_width + w).
    Each step expands the `beam_width` live hypotheses by every token and keeps the best
    `beam_width * vocab` candidates by log-prob, keras_hub / Hugging Face style:
      * a candidate ending in a stop id finishes, but only if it ranks among the top `beam_width`
        of all candidates (so beam_width=1 is exactly greedy decoding, stops included);
      * the live beams for the next step are the top `beam_width` candidates not ending in a stop id.
    A finished hypothesis is scored log_prob / length ** length_penalty, where length counts the
    scored tokens (the stop id included, so it is >= 1); length_penalty=0 ranks by raw log-prob.
    A row is done once no live beam can still beat its best finished hypothesis (an exact bound:
    log-probs only fall); the loop ends when every row is done or after max_new_tokens steps,
    and then a live beam that out-scores the best finished one wins.

    beam_width: Python int >= 1 (static). length_penalty: Python float.
    Returns {"token_ids": [batch, max_new_tokens] int32 (stop id kept, 0 after it),
             "num_tokens": [batch] int32 (excluding the stop id), "log_prob": [batch] float32}.
    """
    beam_width = int(beam_width)
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    length_penalty = float(length_penalty)
    width = beam_width
    first_tokens = tf.cast(first_tokens, tf.int32)
    max_new_tokens = tf.cast(max_new_tokens, tf.int32)
    stop_ids = _as_stop_ids(stop_ids)
    initial_state = _as_tensor_nest(initial_state)
    neg_inf = tf.constant(-float("inf"), tf.float32)

    batch = tf.shape(first_tokens)[0]
    # Each row's beams sit next to each other: [b0w0, b0w1, ..., b1w0, ...].
    tiled_state = tf.nest.map_structure(lambda s: tf.repeat(s, width, axis=0), initial_state)
    tiled_tokens = tf.repeat(first_tokens, width, axis=0)  # [batch * width]
    # All beams start identical; only beam 0 may expand at step 0, or the top candidates would be
    # `width` copies of the same token.
    beam_log_prob = tf.tile(
        tf.concat([tf.zeros([1, 1]), tf.fill([1, width - 1], neg_inf)], axis=1), tf.stack([batch, 1])
    )  # [batch, width]
    beam_offsets = (tf.range(batch) * width)[:, tf.newaxis]  # [batch, 1]

    def score(log_prob: tf.Tensor, length: tf.Tensor) -> tf.Tensor:
        if length_penalty == 0.0:
            return log_prob
        return log_prob / tf.cast(tf.maximum(length, 1), tf.float32) ** length_penalty

    def body(t, tokens, state, seqs, beam_lp, best_ids, best_len, best_lp, best_score):
        logits, new_state = step_fn(tokens, state)
        logits = tf.cast(logits, tf.float32)
        vocab = tf.shape(logits)[1]
        step_lp = tf.reshape(tf.nn.log_softmax(logits, axis=-1), tf.stack([batch, width, vocab]))
        candidates = tf.reshape(beam_lp[:, :, tf.newaxis] + step_lp, tf.stack([batch, width * vocab]))
        # Flat candidate index c = parent_beam * vocab + token.
        cand_is_stop = tf.tile(_is_stop(tf.range(vocab), stop_ids), [width])[tf.newaxis, :]  # [1, width * vocab]

        # Finished hypotheses from this step: the best stop candidate, if it ranks in the top `width`.
        top_lp, top_idx = tf.math.top_k(candidates, k=width)  # [batch, width]
        top_is_stop = _is_stop(top_idx % vocab, stop_ids)
        stop_lp = tf.where(top_is_stop, top_lp, neg_inf)
        stop_rank = tf.argmax(stop_lp, axis=1, output_type=tf.int32)  # [batch]
        new_lp = tf.gather(stop_lp, stop_rank, batch_dims=1)  # [batch], -inf when none stopped
        new_idx = tf.gather(top_idx, stop_rank, batch_dims=1)
        new_score = score(new_lp, t + 1)
        better = new_score > best_score  # strict: never replaced by -inf, earlier wins ties
        parent_seq = tf.gather(seqs, new_idx // vocab, batch_dims=1)  # [batch, max_new]
        finished_seq = (
            parent_seq
            + tf.one_hot(t, tf.shape(seqs)[2], dtype=tf.int32)[tf.newaxis, :] * (new_idx % vocab)[:, tf.newaxis]
        )
        best_ids = tf.where(better[:, tf.newaxis], finished_seq, best_ids)
        best_len = tf.where(better, t, best_len)
        best_lp = tf.where(better, new_lp, best_lp)
        best_score = tf.where(better, new_score, best_score)

        # Live beams: the best `width` candidates that do not stop.
        live = tf.where(cand_is_stop, neg_inf, candidates)
        beam_lp, live_idx = tf.math.top_k(live, k=width)  # [batch, width], sorted best first
        parents = live_idx // vocab
        next_tokens = live_idx % vocab  # [batch, width]
        seqs = tf.gather(seqs, parents, batch_dims=1)  # [batch, width, max_new]
        seqs += tf.one_hot(t, tf.shape(seqs)[2], dtype=tf.int32)[tf.newaxis, tf.newaxis, :] * next_tokens[:, :, None]
        flat_parents = tf.reshape(parents + beam_offsets, [-1])  # [batch * width] rows of new_state
        state = tf.nest.map_structure(lambda s: tf.gather(s, flat_parents), new_state)
        return t + 1, tf.reshape(next_tokens, [-1]), state, seqs, beam_lp, best_ids, best_len, best_lp, best_score

    def cond(t, tokens, state, seqs, beam_lp, best_ids, best_len, best_lp, best_score):
        # After t steps a live beam holds t tokens at log-prob L <= 0 and can only lose
        # probability. With length_penalty >= 0 its best possible final score is L / max_len**a,
        # with a < 0 it is L / t**a.
        best_live = beam_lp[:, 0]
        bound_len = max_new_tokens if length_penalty >= 0.0 else t
        can_improve = score(best_live, bound_len) > best_score
        return tf.logical_and(t < max_new_tokens, tf.reduce_any(can_improve))

    loop_vars = (
        tf.constant(0, tf.int32),
        tiled_tokens,
        tiled_state,
        tf.zeros(tf.stack([batch, width, max_new_tokens]), tf.int32),
        beam_log_prob,
        tf.zeros(tf.stack([batch, max_new_tokens]), tf.int32),
        tf.zeros([batch], tf.int32),
        tf.fill([batch], neg_inf),
        tf.fill([batch], neg_inf),
    )
    shape_invariants = (
        tf.TensorShape([]),
        tf.TensorShape([None]),
        tf.nest.map_structure(_batch_invariant, tiled_state),
        tf.TensorShape([None, width, None]),
        tf.TensorShape([None, width]),
        tf.TensorShape([None, None]),
        tf.TensorShape([None]),
        tf.TensorShape([None]),
        tf.TensorShape([None]),
    )
    t, _, _, seqs, beam_lp, best_ids, best_len, best_lp, best_score = tf.while_loop(
        cond, body, loop_vars, shape_invariants=shape_invariants
    )
    # The best live beam (index 0: top_k sorts) has t tokens and no stop; it wins only if it
    # strictly out-scores the best finished hypothesis (always, when none finished).
    live_wins = score(beam_lp[:, 0], t) > best_score
    return {
        "token_ids": tf.where(live_wins[:, tf.newaxis], seqs[:, 0, :], best_ids),
        "num_tokens": tf.where(live_wins, t, best_len),
        "log_prob": tf.where(live_wins, beam_lp[:, 0], best_lp),
    }
