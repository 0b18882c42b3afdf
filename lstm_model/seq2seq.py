"""The translation model: BiLSTM encoder, LSTM decoder with global attention (Luong et al. 2015).

source ids [batch, S] int32 (the sentence's ids, then [EOS]; 0-padded on the right)
  -> Embedding (source vocabulary) -> Dropout                    [batch, S, embedding_dim]
  -> Bidirectional(LSTM) x layers, Dropout between               memory [batch, S, 2 * units]
  -> each encoder layer's final (forward; backward) h and c -> Dense -> that decoder layer's initial h, c
target input ids [batch, T] int32 ([BOS], then the sentence's ids; teacher forcing)
  -> Embedding (target vocabulary) -> Dropout
  -> LSTM x layers (Dropout between)                             h_t [batch, T, units]
  -> attention over memory, source [PAD] masked:                 weights a_t [batch, T, S] (softmax over S)
       luong:    score(h_t, m_s) = h_t . (W m_s)                 ("general", multiplicative)
       bahdanau: score(h_t, m_s) = v . tanh(W1 m_s + W2 h_t)     (additive)
     context c_t = sum_s a_ts m_s                                [batch, T, 2 * units]
  -> attentional state tanh(Wc [c_t; h_t]) -> Dropout           [batch, T, units]
  -> output layer                                                logits [batch, T, target vocabulary]
       tie_embeddings (default): (Dense to embedding_dim if it differs from units) . E_target^T + b,
       the target embedding matrix reused; else a Dense layer of its own
  loss: cross-entropy against the target ids then [EOS] (optionally label-smoothed), [PAD] positions masked;
  with num_sampled, a sampled softmax in training (the target and num_sampled ids drawn log-uniformly).

Tying matters here: with the same budget of 600 steps (1.3 epochs of Multi30k) the tied model reached a
validation loss of 3.07 nats/token and greedy BLEU 18.0, the untied one 4.43 and 0.2 (README).

Attention is computed after the decoder LSTM from its output (no "input feeding"), so the LSTM layers run
over the whole target sequence in one call in training (the fused cuDNN kernel on a GPU; keras' defaults:
tanh/sigmoid, no recurrent dropout, not unrolled); both score functions sit in the same place, so
`attention` only swaps the score. The decoder at target position t sees target tokens <= t only (the
LSTM is causal; attention looks at the source only).

Decoding drives the same layers one token at a time through `step(tokens, state) -> (logits, state)`, the
contract of `lstm_model.sampling`: greedy decoding (`sampling.generate` with top_k=1) and
`sampling.beam_search` both call it. The state carries the encoder memory (tiled with the beams), so the
step needs nothing else. Each row has its own length budget (max_length_a * source tokens + max_length_b):
`step` forces [EOS] once a row has used it, so a row's output never depends on the rest of its batch.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from keras import layers

from schemas import names

ATTENTION_TYPES = ("luong", "bahdanau")
_MASKED = -1e9  # score of a masked source position / logit of a forbidden token (finite: no NaN in softmax)


@dataclasses.dataclass
class TranslationConfig:
    # --- model
    embedding_dim: int = 256  # width of the source and target token embeddings
    units: int = 256  # LSTM units: per direction in the encoder, in the decoder, and of the attentional state
    layers: int = 1  # stacked encoder BiLSTM and decoder LSTM layers (decoder layer i starts from encoder layer i)
    attention: str = "luong"  # score function: "luong" (h_t . W m_s) or "bahdanau" (v . tanh(W1 m_s + W2 h_t))
    dropout: float = 0.3  # drop rate on embeddings, between LSTM layers and on the attentional state (0..1)
    label_smoothing: float = 0.1  # share of the target probability spread over the vocabulary in the loss (0..1)
    tie_embeddings: bool = True  # output layer reuses the target embedding matrix (via a projection if widths differ)
    num_sampled: int = 0  # training only: sampled softmax over this many target ids per step (0 = full softmax)
    # --- input
    max_source_length: int = 100  # source tokens kept (the first ones), training and serving alike; [EOS] follows
    max_target_length: int = 100  # target tokens kept in training (the first ones); [EOS] follows
    batch_size: int = 64  # sentence pairs per step (padded per batch, bucketed by length)
    bucket_width: int = 4  # token-length bucket width for batching similar lengths
    shuffle_buffer: int = 30_000  # pairs in the shuffle buffer
    # --- optimisation
    epochs: int = 15  # upper bound; early stopping or max_minutes usually ends sooner
    steps_per_epoch: int = 0  # steps between validations and checkpoints; 0 = one pass over the training split
    learning_rate: float = 2e-3  # Adam step size (peak of the cosine schedule)
    lr_schedule: str = "cosine"  # "cosine": to 1/10 of learning_rate over max_minutes (else epochs); "constant"
    clipnorm: float = 5.0  # global gradient norm clip
    early_stopping_patience: int = 3  # epochs without a better validation BLEU before stopping (0 = never)
    max_minutes: float = 0.0  # wall-clock training budget in minutes, validation included; 0 = none
    # --- decoding (validation, test, export)
    beam_width: int = 5  # beam of the exported `translate` signature and the test figures (1 = greedy)
    length_penalty: float = 1.0  # beam score = log_prob / length ** length_penalty (0 = raw log-prob)
    max_length_a: float = 1.5  # decoding budget: max_length_a * source tokens + max_length_b target tokens
    max_length_b: int = 10  # see max_length_a
    validation_bleu_sentences: int = 1000  # validation sentences translated (greedy) for BLEU each epoch; 0 = all
    seed: int = 42  # seeds weights, shuffling and dropout

    def __post_init__(self) -> None:
        self.validate()

    # Dict / JSON round trip (the same shape as lstm_model.config's configs); unknown keys are rejected.
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TranslationConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | Path) -> TranslationConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def validate(self) -> None:
        for name in ("embedding_dim", "units", "layers", "max_source_length", "max_target_length", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("bucket_width", "shuffle_buffer", "epochs", "beam_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.attention not in ATTENTION_TYPES:
            raise ValueError(f"attention must be one of {ATTENTION_TYPES}, got {self.attention!r}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError("dropout and label_smoothing must be in [0, 1)")
        if not isinstance(self.num_sampled, int) or self.num_sampled < 0:
            raise ValueError(f"num_sampled must be an integer >= 0, got {self.num_sampled!r}")
        if self.learning_rate <= 0 or self.clipnorm <= 0:
            raise ValueError("learning_rate and clipnorm must be > 0")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")
        if min(self.steps_per_epoch, self.early_stopping_patience, self.validation_bleu_sentences) < 0:
            raise ValueError("steps_per_epoch, early_stopping_patience and validation_bleu_sentences must be >= 0")
        if self.max_minutes < 0 or self.max_length_a < 0 or self.max_length_b < 1:
            raise ValueError("max_minutes and max_length_a must be >= 0, max_length_b >= 1")


class TiedOutput(layers.Layer):
    """[..., embedding_dim] -> logits [..., vocabulary]: x . E^T + b, E the target embedding matrix (shared)."""

    def __init__(self, embedding: layers.Embedding, **kw):
        super().__init__(**kw)
        self.embedding = embedding

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(self.embedding.input_dim,), initializer="zeros", name="bias")

    def matrix(self) -> tf.Tensor:
        return self.embedding.embeddings

    def call(self, inputs):
        return tf.tensordot(inputs, self.embedding.embeddings, axes=[[-1], [1]]) + self.bias


class Seq2Seq(keras.Model):
    """The whole model; `call([source, target_in])` -> logits [batch, T, target vocabulary] (training)."""

    def __init__(self, config: TranslationConfig, source_vocabulary_size: int, target_vocabulary_size: int, **kw):
        super().__init__(name="lstm_translation", **kw)
        for size in (source_vocabulary_size, target_vocabulary_size):
            if size < 5:
                raise ValueError(f"a vocabulary needs at least 5 tokens (four reserved + one), got {size}")
        self.config = config
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        units, n = config.units, config.layers
        self.source_embedding = layers.Embedding(source_vocabulary_size, config.embedding_dim, name="source_embedding")
        self.target_embedding = layers.Embedding(target_vocabulary_size, config.embedding_dim, name="target_embedding")
        self.dropout = layers.Dropout(config.dropout, seed=config.seed, name="dropout")
        self.encoders = [
            layers.Bidirectional(layers.LSTM(units, return_sequences=True, return_state=True), name=f"encoder_{i + 1}")
            for i in range(n)
        ]
        self.bridge_h = [layers.Dense(units, activation="tanh", name=f"bridge_h_{i + 1}") for i in range(n)]
        self.bridge_c = [layers.Dense(units, name=f"bridge_c_{i + 1}") for i in range(n)]
        self.decoders = [
            layers.LSTM(units, return_sequences=True, return_state=True, name=f"decoder_{i + 1}") for i in range(n)
        ]
        if config.attention == "luong":
            self.memory_key = layers.Dense(units, use_bias=False, name="attention_key")
            self.query = None
            self.score_vector = None
        else:
            self.memory_key = layers.Dense(units, name="attention_key")
            self.query = layers.Dense(units, use_bias=False, name="attention_query")
            self.score_vector = layers.Dense(1, use_bias=False, name="attention_score")
        self.combine = layers.Dense(units, activation="tanh", name="attentional_state")
        if config.tie_embeddings:
            # logits = (attentional state, projected to the embedding width) . target embedding^T + bias
            self.tie_projection = (
                layers.Dense(config.embedding_dim, name="tie_projection") if config.embedding_dim != units else None
            )
            self.output_layer = TiedOutput(self.target_embedding, name="output")
        else:
            self.tie_projection = None
            self.output_layer = layers.Dense(target_vocabulary_size, name="output")

    # ------------------------------------------------------------------ building blocks
    def encode(self, source: tf.Tensor, training=None) -> dict[str, Any]:
        """source [batch, S] int32 (0-padded) -> the decoder's starting state (see `step`), without "remaining"."""
        mask = tf.not_equal(source, names.PAD_ID)
        x = self.dropout(self.source_embedding(source), training=training)
        states = []
        for i, encoder in enumerate(self.encoders):
            x, forward_h, forward_c, backward_h, backward_c = encoder(x, mask=mask, training=training)
            h = self.bridge_h[i](tf.concat([forward_h, backward_h], axis=-1))
            c = self.bridge_c[i](tf.concat([forward_c, backward_c], axis=-1))
            states.append([h, c])
            if i + 1 < len(self.encoders):
                x = self.dropout(x, training=training)
        return {"lstm": states, "memory": x, "keys": self.memory_key(x), "source_mask": tf.cast(mask, tf.float32)}

    def attend(self, hidden: tf.Tensor, encoded: dict[str, Any]) -> tuple[tf.Tensor, tf.Tensor]:
        """hidden [batch, T, units] -> (attentional state [batch, T, units], weights [batch, T, S])."""
        keys = encoded["keys"]
        if self.query is None:
            scores = tf.einsum("btu,bsu->bts", hidden, keys)
        else:
            summed = tf.tanh(keys[:, tf.newaxis, :, :] + self.query(hidden)[:, :, tf.newaxis, :])  # [b, T, S, u]
            scores = tf.squeeze(self.score_vector(summed), -1)
        mask = encoded["source_mask"][:, tf.newaxis, :]
        weights = tf.nn.softmax(scores * mask + (1.0 - mask) * _MASKED, axis=-1)
        context = tf.einsum("bts,bsd->btd", weights, encoded["memory"])
        return self.combine(tf.concat([context, hidden], axis=-1)), weights

    def output_states(self, attentional: tf.Tensor, training=None) -> tf.Tensor:
        """Attentional state [..., units] -> what the output layer multiplies [..., width] (dropout in training)."""
        x = self.dropout(attentional, training=training)
        return x if self.tie_projection is None else self.tie_projection(x)

    def output_weights(self) -> tuple[tf.Tensor, tf.Tensor]:
        """(matrix [vocabulary, width], bias [vocabulary]) of the output layer (for the sampled softmax)."""
        if isinstance(self.output_layer, TiedOutput):
            return self.output_layer.matrix(), self.output_layer.bias
        return tf.transpose(self.output_layer.kernel), self.output_layer.bias

    def decode_states(self, target_in: tf.Tensor, encoded: dict[str, Any], training=None):
        """Teacher forcing: target_in [batch, T] int32 -> (output states [batch, T, width], weights [batch, T, S])."""
        x = self.dropout(self.target_embedding(target_in), training=training)
        mask = tf.not_equal(target_in, names.PAD_ID)
        for i, decoder in enumerate(self.decoders):
            x, _, _ = decoder(x, mask=mask, initial_state=encoded["lstm"][i], training=training)
            if i + 1 < len(self.decoders):
                x = self.dropout(x, training=training)
        attentional, weights = self.attend(x, encoded)
        return self.output_states(attentional, training=training), weights

    def decode_sequence(self, target_in: tf.Tensor, encoded: dict[str, Any], training=None):
        """Teacher forcing: target_in [batch, T] int32 -> (logits [batch, T, vocabulary], weights [batch, T, S])."""
        states, weights = self.decode_states(target_in, encoded, training=training)
        return self.output_layer(states), weights

    def call(self, inputs, training=None):
        source, target_in = inputs
        logits, _ = self.decode_sequence(target_in, self.encode(source, training=training), training=training)
        return logits

    def build_all(self) -> Seq2Seq:
        """Create every variable (a call on a dummy batch), so weights can be loaded and counted."""
        self([tf.ones([1, 2], tf.int32), tf.ones([1, 2], tf.int32)], training=False)
        return self

    # ------------------------------------------------------------------ one step at a time
    def initial_state(self, source: tf.Tensor, max_lengths: tf.Tensor) -> dict[str, Any]:
        """The state `step` starts from: encoder results plus each row's token budget (max_lengths [batch])."""
        state = self.encode(source, training=False)
        state["remaining"] = tf.cast(max_lengths, tf.int32)
        return state

    def step(self, tokens: tf.Tensor, state: dict[str, Any]):
        """(tokens [batch] int32, state) -> (logits [batch, target vocabulary] float32, new state).

        state: {"lstm": [[h, c]] per decoder layer, each [batch, units]; "memory" [batch, S, 2 units];
        "keys" [batch, S, units]; "source_mask" [batch, S] float32; "remaining" [batch] int32 tokens left
        before [EOS] is forced}. Every entry has a leading batch dimension (sampling.beam_search tiles it).
        """
        x = self.target_embedding(tokens)
        new_lstm = []
        for decoder, (h, c) in zip(self.decoders, state["lstm"], strict=True):
            x, (h, c) = decoder.cell(x, [h, c], training=False)
            new_lstm.append([h, c])
        attentional, _ = self.attend(x[:, tf.newaxis, :], state)
        logits = tf.cast(self.output_layer(self.output_states(attentional[:, 0, :], training=False)), tf.float32)
        # A row out of budget can only emit [EOS] (log-prob 0), so it stops right here.
        forced = tf.where(tf.range(self.target_vocabulary_size) == names.EOS_ID, 0.0, _MASKED)  # [vocabulary]
        logits = tf.where((state["remaining"] <= 0)[:, tf.newaxis], forced[tf.newaxis, :], logits)
        new_state = {**state, "lstm": new_lstm, "remaining": state["remaining"] - 1}
        return logits, new_state


# ------------------------------------------------------------------------------------------------ loss and decoding
def token_losses(logits: tf.Tensor, targets: tf.Tensor, label_smoothing: float = 0.0):
    """(logits [batch, T, V], targets [batch, T]) -> (training loss per token, NLL per token, real [batch, T]).

    The training loss mixes the NLL with the mean negative log-prob over the vocabulary (label smoothing);
    the NLL is the unsmoothed cross-entropy (what validation reports). [PAD] targets get 0 in both.
    """
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    nll = -tf.gather(log_probs, tf.cast(targets, tf.int32), batch_dims=2)
    real = tf.cast(tf.not_equal(targets, names.PAD_ID), tf.float32)
    loss = (
        nll
        if not label_smoothing
        else (1.0 - label_smoothing) * nll - label_smoothing * tf.reduce_mean(log_probs, axis=-1)
    )
    return loss * real, nll * real, real


def sampled_token_losses(model: Seq2Seq, source: tf.Tensor, target_in: tf.Tensor, targets: tf.Tensor, num_sampled: int):
    """Training loss per token [batch, T] with a sampled softmax (Jean et al. 2015): each step scores the target
    and `num_sampled` ids drawn log-uniformly (the vocabulary is sorted by frequency), not the whole vocabulary.

    Returns (loss per token, real [batch, T]); [PAD] targets get 0. No label smoothing (it needs every logit).
    """
    states, _ = model.decode_states(target_in, model.encode(source, training=True), training=True)
    matrix, bias = model.output_weights()
    width = tf.shape(states)[-1]
    per_token = tf.nn.sampled_softmax_loss(
        weights=tf.cast(matrix, tf.float32),
        biases=tf.cast(bias, tf.float32),
        labels=tf.reshape(tf.cast(targets, tf.int64), [-1, 1]),
        inputs=tf.reshape(tf.cast(states, tf.float32), [-1, width]),
        num_sampled=num_sampled,
        num_classes=model.target_vocabulary_size,
    )
    real = tf.cast(tf.not_equal(targets, names.PAD_ID), tf.float32)
    return tf.reshape(per_token, tf.shape(targets)) * real, real


def source_with_eos(ids: tf.RaggedTensor, max_source_length: int) -> tuple[tf.Tensor, tf.Tensor]:
    """[batch, (tokens)] ids -> (dense [batch, S] int32: the first max_source_length ids then [EOS], 0-padded;
    the number of source tokens kept, without [EOS], [batch] int32)."""
    ids = tf.cast(ids[:, :max_source_length], tf.int32)
    eos = tf.fill([ids.nrows(), 1], tf.constant(names.EOS_ID, tf.int32))
    with_eos = tf.concat([ids, eos], axis=1)
    return with_eos.to_tensor(default_value=names.PAD_ID), tf.cast(ids.row_lengths(), tf.int32)


def max_lengths(source_tokens: tf.Tensor, max_length_a, max_length_b) -> tf.Tensor:
    """Per-row decoding budget in target tokens ([EOS] excluded): floor(a * source tokens) + b, at least 1."""
    budget = tf.math.floor(tf.cast(max_length_a, tf.float32) * tf.cast(source_tokens, tf.float32))
    return tf.maximum(tf.cast(budget, tf.int32) + tf.cast(max_length_b, tf.int32), 1)


def translate_ids(
    model: Seq2Seq,
    source: tf.Tensor,
    source_tokens: tf.Tensor,
    *,
    beam_width: int,
    length_penalty: float,
    max_length_a,
    max_length_b,
) -> dict[str, tf.Tensor]:
    """Decode source [batch, S] (with [EOS], 0-padded) -> sampling's result: token_ids [batch, L] (the [EOS] kept,
    0 after it), num_tokens [batch] ([EOS] excluded), log_prob [batch] float32 (natural log, [EOS] included).

    beam_width 1 is greedy decoding (`sampling.generate` with top_k=1); more is `sampling.beam_search`.
    """
    from lstm_model import sampling

    budgets = max_lengths(source_tokens, max_length_a, max_length_b)
    state = model.initial_state(source, budgets)
    batch = tf.shape(source)[0]
    first = tf.fill([batch], tf.constant(names.BOS_ID, tf.int32))
    steps = tf.reduce_max(tf.concat([budgets, [0]], axis=0)) + 1  # + 1: room for the [EOS]
    if beam_width == 1:
        return sampling.generate(
            model.step,
            state,
            first,
            steps,
            temperature=tf.constant(1.0),
            top_k=tf.constant(1),
            top_p=tf.constant(1.0),
            seed=tf.zeros([batch], tf.int64),
            stop_ids=[names.EOS_ID],
        )
    return sampling.beam_search(
        model.step,
        state,
        first,
        steps,
        beam_width=beam_width,
        length_penalty=length_penalty,
        stop_ids=[names.EOS_ID],
    )


def attention_of(model: Seq2Seq, source: tf.Tensor, target_ids: tf.Tensor, num_tokens: tf.Tensor) -> tf.Tensor:
    """Attention weights [batch, T, S] of the decoder reading [BOS] + target_ids[:, :T - 1] (row t: the weights
    used to predict output token t; T = target_ids' width). Rows past num_tokens + 1 ([EOS]) are zeroed."""
    batch = tf.shape(source)[0]
    target_in = tf.concat([tf.fill([batch, 1], names.BOS_ID), tf.cast(target_ids[:, :-1], tf.int32)], axis=1)
    _, weights = model.decode_sequence(target_in, model.encode(source, training=False), training=False)
    valid = tf.sequence_mask(num_tokens + 1, tf.shape(target_ids)[1], dtype=weights.dtype)
    return weights * valid[:, :, tf.newaxis]


def compile_model(model: Seq2Seq) -> Seq2Seq:
    """Attach Adam (global gradient clipping) as model.optimizer, built, for training and checkpointing."""
    config = model.config
    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate, global_clipnorm=config.clipnorm)
    model.compile(optimizer=optimizer)
    model.optimizer.build(model.trainable_variables)
    return model


def load_model_dir(model_dir: str) -> tuple[Seq2Seq, TranslationConfig]:
    """The model of a translation model directory, rebuilt from config.json and its weights (nothing unpickled)."""
    from lstm_model import data

    path = Path(model_dir)
    values = json.loads((path / names.MODEL_CONFIG_FILE).read_text())
    # Models saved before tie_embeddings existed have a separate output matrix: rebuild them that way.
    config = TranslationConfig.from_dict({"tie_embeddings": False, **values})
    source = data.read_vocabulary(str(path / names.SOURCE_VOCAB_FILE))
    target = data.read_vocabulary(str(path / names.TARGET_VOCAB_FILE))
    model = Seq2Seq(config, len(source), len(target)).build_all()
    model.load_weights(str(path / WEIGHTS_FILE))
    return model, config


WEIGHTS_FILE = "model.weights.h5"
