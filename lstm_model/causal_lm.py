"""The causal (forward) stacked LSTM language model of the language_model task.

token ids [batch, time + 1] int32 (a window of the token stream; [EOS] ends every document)
  -> inputs = ids[:, :-1], targets = ids[:, 1:]             [batch, time]
  -> Embedding                      [batch, time, embedding_dim]      layer "embedding"
  -> Dropout
  -> LSTM x num_layers, each followed by Dropout            layers "lstm_1", "lstm_2", ...
                                    [batch, time, units]
  -> NextTokenHead                  per-token negative log-likelihood [batch, time] (nats);
                                    adds its mean as the model's loss

The head's logits are h @ W^T + b over the whole vocabulary: W is its own [vocabulary,
width] matrix, or with `tie_embeddings` the embedding matrix itself (after a Dense
projection units -> embedding_dim when the widths differ). In training, a large
vocabulary uses a sampled softmax (`num_sampled` candidates, log-uniform: vocab.tsv is
sorted by frequency); evaluation is always the exact softmax, so validation loss is a
true cross-entropy in nats per token.

The LSTM layers keep Keras' cuDNN-eligible defaults (tanh/sigmoid, no recurrent
dropout, not unrolled), so a GPU runs the fused kernel; the dropout sits between
layers instead. The layer names match the classifier's unidirectional encoder
(`lstm_model.model.build_classifier` with bidirectional=False), so a classifier can
start from this model's embedding and LSTM weights (ULMFiT-style transfer).

Generation uses the same layers one token at a time (`step`): the keras-io
`next(prompt, cache, index)` pattern that every sampler in `lstm_model.sampling` drives.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from lstm_model.config import LanguageModelConfig
from schemas import names


@keras.saving.register_keras_serializable(package="lstm_model")
class NextTokenHead(layers.Layer):
    """(hidden [batch, time, units], targets [batch, time]) -> per-token NLL [batch, time] in nats; adds the mean loss.

    Positions whose target is padding (id 0) get 0 and are left out of the mean.
    """

    def __init__(self, vocabulary_size: int, num_sampled: int = 0, tied_embedding=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.num_sampled = num_sampled
        self.tied_embedding = tied_embedding  # an Embedding layer whose matrix is the output matrix, or None
        self.seed = seed

    def build(self, input_shape):
        hidden_shape = input_shape[0]
        width = hidden_shape[-1]
        if self.tied_embedding is None:
            self.output_weights = self.add_weight(
                shape=(self.vocabulary_size, width), initializer="glorot_uniform", name="output_weights"
            )
        self.output_bias = self.add_weight(shape=(self.vocabulary_size,), initializer="zeros", name="output_bias")

    def _weights_matrix(self):
        return self.tied_embedding.embeddings if self.tied_embedding is not None else self.output_weights

    def logits(self, hidden: tf.Tensor) -> tf.Tensor:
        """[..., width] -> [..., vocabulary] float32 logits."""
        hidden = tf.cast(hidden, tf.float32)
        return tf.tensordot(hidden, tf.cast(self._weights_matrix(), tf.float32), axes=[[-1], [1]]) + self.output_bias

    def call(self, inputs, training=False):
        hidden, targets = inputs
        targets = tf.cast(targets, tf.int64)
        real = tf.cast(targets != names.PAD_ID, tf.float32)
        if training and self.num_sampled:
            width = tf.shape(hidden)[-1]
            flat_hidden = tf.reshape(tf.cast(hidden, tf.float32), [-1, width])
            per_token = tf.nn.sampled_softmax_loss(
                weights=tf.cast(self._weights_matrix(), tf.float32),
                biases=self.output_bias,
                labels=tf.reshape(targets, [-1, 1]),
                inputs=flat_hidden,
                num_sampled=self.num_sampled,
                num_classes=self.vocabulary_size,
                seed=self.seed,
            )
            per_token = tf.reshape(per_token, tf.shape(targets))
        else:
            per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=self.logits(hidden))
        per_token = per_token * real
        self.add_loss(tf.math.divide_no_nan(tf.reduce_sum(per_token), tf.reduce_sum(real)))
        return per_token

    def compute_output_shape(self, input_shape):
        return input_shape[1]


class CausalLM:
    """The model for training (`self.model`) and the layers generation and scoring drive one step at a time."""

    def __init__(self, config: LanguageModelConfig, vocabulary_size: int):
        if vocabulary_size < 5:
            raise ValueError(
                f"vocabulary_size must be at least 5 (four reserved ids + one token), got {vocabulary_size}"
            )
        self.config = config
        self.vocabulary_size = vocabulary_size
        self.embedding = layers.Embedding(vocabulary_size, config.embedding_dim, name="embedding")
        self.embedding_dropout = layers.Dropout(config.dropout, name="embedding_dropout")
        self.lstms = [
            layers.LSTM(config.lstm_units, return_sequences=True, return_state=True, name=f"lstm_{i + 1}")
            for i in range(config.num_layers)
        ]
        self.dropouts = [layers.Dropout(config.dropout, name=f"lstm_{i + 1}_dropout") for i in range(config.num_layers)]
        tie = config.tie_embeddings
        self.projection = (
            layers.Dense(config.embedding_dim, name="tie_projection")
            if tie and config.embedding_dim != config.lstm_units
            else None
        )
        self.head = NextTokenHead(
            vocabulary_size,
            num_sampled=config.sampled_candidates(vocabulary_size),
            tied_embedding=self.embedding if tie else None,
            seed=config.seed,
            name="next_token",
        )
        windows = keras.Input(shape=(None,), dtype="int32", name="token_ids")  # [batch, time + 1]
        inputs, targets = windows[:, :-1], windows[:, 1:]
        hidden = self.hidden_states(inputs)
        self.model = keras.Model(windows, self.head([hidden, targets]), name="lstm_language_model")

    # ------------------------------------------------------------------ whole sequences
    def hidden_states(self, ids, mask=None, initial_states=None, return_states=False, training=None):
        """[batch, time] ids -> [batch, time, width] (width: units, or embedding_dim when tied through a projection).

        `mask` [batch, time] bool: right padding; the LSTM state carries over masked steps, so the
        final states are those after each row's last real token. With `return_states`, also the
        final [h, c] of every layer.
        """
        x = self.embedding_dropout(self.embedding(ids), training=training)
        states = []
        for index, (lstm, dropout) in enumerate(zip(self.lstms, self.dropouts, strict=True)):
            initial = None if initial_states is None else initial_states[index]
            x, h, c = lstm(x, mask=mask, initial_state=initial, training=training)
            x = dropout(x, training=training)
            states.append([h, c])
        if self.projection is not None:
            x = self.projection(x)
        return (x, states) if return_states else x

    def token_log_probs(self, ids: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """Exact log P(token t | tokens < t) for t >= 1 of right-padded ids [batch, time]; 0 past each row's length.

        Returns [batch, time - 1] float32. Logits are built 64 positions at a time, so a long
        text with a large vocabulary does not hold [batch, time, vocabulary] floats at once.
        """
        time = tf.shape(ids)[1]
        mask = tf.sequence_mask(lengths, time)
        hidden = self.hidden_states(ids[:, :-1], mask=mask[:, :-1], training=False)  # [batch, time - 1, width]
        targets = tf.cast(ids[:, 1:], tf.int64)
        chunk = 64
        steps = time - 1
        pieces = tf.TensorArray(tf.float32, size=(steps + chunk - 1) // chunk, infer_shape=False)

        def body(i, pieces):
            start = i * chunk
            logits = self.head.logits(hidden[:, start : start + chunk])
            log_probs = -tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=targets[:, start : start + chunk], logits=logits
            )
            return i + 1, pieces.write(i, tf.transpose(log_probs))  # [chunk, batch]: concat along time

        _, pieces = tf.while_loop(lambda i, _: i * chunk < steps, body, [tf.constant(0), pieces])
        log_probs = tf.transpose(pieces.concat())  # [batch, time - 1]
        return tf.where(mask[:, 1:], log_probs, tf.zeros_like(log_probs))

    # ------------------------------------------------------------------ one step at a time
    def zero_state(self, batch_size) -> list[list[tf.Tensor]]:
        units = self.config.lstm_units
        return [[tf.zeros([batch_size, units]), tf.zeros([batch_size, units])] for _ in self.lstms]

    def step(self, tokens: tf.Tensor, state):
        """(tokens [batch] int32, state: [[h, c]] per layer) -> (logits [batch, vocabulary], new state)."""
        x = self.embedding(tokens)  # [batch, embedding_dim]
        new_state = []
        for lstm, (h, c) in zip(self.lstms, state, strict=True):
            x, (h, c) = lstm.cell(x, [h, c], training=False)
            new_state.append([h, c])
        if self.projection is not None:
            x = self.projection(x)
        return self.head.logits(x), new_state

    def prompt_state(self, ids: tf.Tensor, lengths: tf.Tensor):
        """Right-padded prompts [batch, time], lengths [batch] (>= 1) -> (state after all but the last token, last token).

        The samplers start by feeding each row's last prompt token, so the state they need is the
        one after the tokens before it. A one-token prompt starts from the zero state.
        """
        batch = tf.shape(ids)[0]
        last = tf.gather(ids, lengths - 1, axis=1, batch_dims=1)  # [batch]
        before = tf.sequence_mask(lengths - 1, tf.shape(ids)[1])
        # A row with nothing before its last token must keep the zero state: mask every step of it.
        _, states = self.hidden_states(
            ids, mask=before, initial_states=self.zero_state(batch), return_states=True, training=False
        )
        return states, tf.cast(last, tf.int32)


def compile_language_model(lm: CausalLM) -> keras.Model:
    """Adam with gradient clipping; the loss is the head's (compile without a loss)."""
    config = lm.config
    lm.model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate, clipnorm=config.clipnorm))
    return lm.model


# ------------------------------------------------------------------------------------------------ a trained model
WEIGHTS_FILE = "model.weights.h5"  # in a language_model model directory (lstm_model.tasks.language_model)


def is_model_dir(model_dir: str) -> bool:
    """Whether `model_dir` holds a trained causal language model (its weights file, and model_info.json's task)."""
    import json
    from pathlib import Path

    info = Path(model_dir) / names.MODEL_INFO_FILE
    if not (Path(model_dir) / WEIGHTS_FILE).is_file():  # lstm_model.pretrain's bidirectional LMs keep other files
        return False
    try:
        return json.loads(info.read_text()).get("task") == names.TASK_LANGUAGE_MODEL
    except (OSError, ValueError, AttributeError):
        return False


def load_model_dir(model_dir: str) -> tuple[CausalLM, LanguageModelConfig, list[str]]:
    """The language model of a model directory, rebuilt from config.json and loaded with its weights.

    Nothing is unpickled: the architecture is this module's code, the weights an HDF5 file of arrays.
    """
    from pathlib import Path

    from lstm_model import data

    path = Path(model_dir)
    config = LanguageModelConfig.from_json(path / names.MODEL_CONFIG_FILE)
    vocabulary = data.read_vocabulary(str(path / names.VOCAB_FILE))
    lm = CausalLM(config, len(vocabulary))
    lm.model.load_weights(str(path / WEIGHTS_FILE))
    return lm, config, vocabulary


def transfer_differences(lm_config: LanguageModelConfig, classifier_config) -> list[str]:
    """Why a classifier of `classifier_config` cannot start from this causal LM's encoder ([] if it can)."""
    differences = []
    if classifier_config.bidirectional:
        differences.append("bidirectional: the classifier must be unidirectional (--bidirectional false)")
    for field in ("embedding_dim", "lstm_units"):
        if getattr(classifier_config, field) != getattr(lm_config, field):
            differences.append(
                f"{field}: classifier {getattr(classifier_config, field)}, language model {getattr(lm_config, field)}"
            )
    if classifier_config.num_layers < lm_config.num_layers:
        differences.append(
            f"num_layers: classifier {classifier_config.num_layers}, language model {lm_config.num_layers}"
        )
    return differences
