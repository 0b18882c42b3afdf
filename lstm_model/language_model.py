"""The LSTM language model pretrained on unlabeled text, and its transfer to the classifier.

token ids [batch, time] int32 (a window of concatenated reviews, no padding)
  -> Embedding                        [batch, time, embedding_dim]   layer "embedding"
  -> Dropout
  -> (Bi)LSTM, return_sequences       [batch, time, units * directions]  layer "bidirectional_1" / "lstm_1"
  -> Dropout
  -> BidirectionalLMLoss              adds the loss; forward half at t predicts token t+1,
                                      backward half at t predicts token t-1 (two LMs, ELMo style)

The encoder layers carry the classifier's names (`lstm_model.model.build_classifier`),
so `transfer_encoder` copies their weights into a classifier of the same shape. A
bidirectional LM has one layer: in a stacked BiLSTM the second layer's forward states
would read the first layer's backward states, i.e. the very tokens they must predict.

The output layer is affordable on a CPU: in training, a sampled softmax over `num_sampled`
ids drawn log-uniformly (Zipfian: vocabulary ids are sorted by frequency), since a 30k-way
softmax at every position would cost ~40x the LSTM step itself; in evaluation, the exact
full softmax, so validation loss is a true cross-entropy in nats per token (perplexity =
exp(loss)).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from lstm_model.config import PretrainConfig, TrainConfig
from lstm_model.model import encoder_layers
from schemas import names


@keras.saving.register_keras_serializable(package="lstm_model")
class BidirectionalLMLoss(layers.Layer):
    """([batch, time, units * directions] states, [batch, time] ids) -> the states; adds the LM loss.

    One softmax (weights [vocabulary, units], bias [vocabulary]) is shared by the two
    directions. Positions whose target is padding (id 0) are left out of the loss.
    `unigram_counts` (id order) set the initial bias to log unigram probability.
    """

    def __init__(
        self,
        vocabulary_size: int,
        units: int,
        bidirectional: bool,
        num_sampled: int,
        unigram_counts: list[int] | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_sampled >= vocabulary_size:
            num_sampled = 0  # a "sample" as large as the vocabulary is the full softmax
        self.vocabulary_size = vocabulary_size
        self.units = units
        self.bidirectional = bidirectional
        self.num_sampled = num_sampled
        self.unigram_counts = list(unigram_counts) if unigram_counts is not None else None
        self.seed = seed

    def build(self, input_shape):
        # Output vectors start at zero and the bias at log unigram probability. A sampled softmax only moves
        # the logits of the ids it draws; the thousands of rare ids it seldom draws keep their initial logit,
        # which is then their corpus frequency (not 0, nor a random projection of the state), so the exact
        # softmax at evaluation does not hand them mass they never earned.
        self.softmax_weights = self.add_weight(
            shape=(self.vocabulary_size, self.units), initializer="zeros", name="softmax_weights"
        )
        bias = "zeros"
        if self.unigram_counts is not None:
            counts = np.asarray(self.unigram_counts, dtype="float64")
            bias = keras.initializers.Constant(np.log(counts / counts.sum()).astype("float32"))
        self.softmax_bias = self.add_weight(shape=(self.vocabulary_size,), initializer=bias, name="softmax_bias")

    def _pairs(self, states, ids):
        """(states [n, units], target ids [n]) of every position with a real token and a real target."""
        forward = states[:, :-1, : self.units]
        forward_targets, forward_sources = ids[:, 1:], ids[:, :-1]
        parts = [(forward, forward_targets, forward_sources)]
        if self.bidirectional:
            parts.append((states[:, 1:, self.units :], ids[:, :-1], ids[:, 1:]))
        inputs, targets = [], []
        for part_states, part_targets, part_sources in parts:
            keep = tf.logical_and(part_targets != names.PAD_ID, part_sources != names.PAD_ID)
            inputs.append(tf.boolean_mask(part_states, keep))
            targets.append(tf.boolean_mask(part_targets, keep))
        return tf.concat(inputs, axis=0), tf.cast(tf.concat(targets, axis=0), tf.int64)

    def call(self, inputs, training=False):
        states, ids = inputs
        hidden, targets = self._pairs(tf.cast(states, tf.float32), tf.cast(ids, tf.int64))
        if training and self.num_sampled:
            # Candidates from the log-uniform (Zipfian) sampler, which fits ids sorted by frequency, as
            # vocab.tsv is. (A fixed-unigram^0.75 sampler left the exact loss at the unigram level here.)
            per_token = tf.nn.sampled_softmax_loss(
                weights=self.softmax_weights,
                biases=self.softmax_bias,
                labels=targets[:, None],
                inputs=hidden,
                num_sampled=self.num_sampled,
                num_classes=self.vocabulary_size,
                seed=self.seed,
            )
        else:
            logits = tf.matmul(hidden, self.softmax_weights, transpose_b=True) + self.softmax_bias
            per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
        loss = tf.math.divide_no_nan(tf.reduce_sum(per_token), tf.cast(tf.size(per_token), tf.float32))
        self.add_loss(loss)
        return states

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "units": self.units,
            "bidirectional": self.bidirectional,
            "num_sampled": self.num_sampled,
            "unigram_counts": None,  # only the initial bias; the saved weights carry the trained one
            "seed": self.seed,
        }


def build_language_model(
    config: PretrainConfig, vocabulary_size: int, unigram_counts: list[int] | None = None
) -> keras.Model:
    """Returns an uncompiled LM whose loss is added by its last layer (compile without a loss)."""
    if vocabulary_size < 3:
        raise ValueError(f"vocabulary_size must be at least 3 (two reserved ids + one token), got {vocabulary_size}")
    if unigram_counts is not None and len(unigram_counts) != vocabulary_size:
        raise ValueError(f"unigram_counts has {len(unigram_counts)} entries for a vocabulary of {vocabulary_size}")
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    # Windows are cut from a stream of concatenated reviews, so they hold no padding and need no mask.
    x = layers.Embedding(vocabulary_size, config.embedding_dim, name="embedding")(token_ids)
    x = layers.Dropout(config.dropout, name="embedding_dropout")(x)
    for index in range(config.num_layers):
        lstm = layers.LSTM(config.lstm_units, return_sequences=True, name=f"lstm_{index + 1}")
        x = layers.Bidirectional(lstm, name=f"bidirectional_{index + 1}")(x) if config.bidirectional else lstm(x)
    x = layers.Dropout(config.dropout, name="output_dropout")(x)
    states = BidirectionalLMLoss(
        vocabulary_size,
        config.lstm_units,
        config.bidirectional,
        config.num_sampled,
        unigram_counts=unigram_counts,
        seed=config.seed,
        name="lm_softmax",
    )([x, token_ids])
    return keras.Model(token_ids, states, name="lstm_language_model")


def compile_language_model(model: keras.Model, config: PretrainConfig) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate, clipnorm=config.clipnorm))
    return model


# ------------------------------------------------------------------------------------------------ input
def window_dataset(files: list[str], config: PretrainConfig, shuffle: bool) -> tf.data.Dataset:
    """[batch_size, sequence_length] int32 windows cut from the reviews of `files`, concatenated in order.

    Reviews are read 256 at a time, their ids concatenated and cut into windows of
    `sequence_length`; the remainder of each group (< one window) is dropped, about
    0.2% of the tokens at the defaults. Shuffling is over windows, seeded.
    """
    from schemas.tfrecord import feature_spec

    spec = {names.FEATURE_TOKEN_IDS: feature_spec()[names.FEATURE_TOKEN_IDS]}
    length = config.sequence_length

    def to_windows(serialized):  # [256] serialized examples -> [windows, length]
        ids = tf.io.parse_example(serialized, spec)[names.FEATURE_TOKEN_IDS]  # ragged [256, (tokens)]
        stream = tf.cast(ids.flat_values, tf.int32)
        count = tf.shape(stream)[0] // length
        return tf.reshape(stream[: count * length], [count, length])

    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(256)
    dataset = dataset.map(to_windows, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
    if shuffle:
        dataset = dataset.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
    return dataset.batch(config.batch_size, drop_remainder=shuffle).prefetch(tf.data.AUTOTUNE)


# ------------------------------------------------------------------------------------------------ transfer
def check_compatible(pretrain: PretrainConfig, train: TrainConfig) -> None:
    """ValueError unless the classifier's encoder has the pretrained encoder's shape."""
    differences = [
        f"{field}: classifier {getattr(train, field)!r}, language model {getattr(pretrain, field)!r}"
        for field in ("bidirectional", "embedding_dim", "lstm_units")
        if getattr(train, field) != getattr(pretrain, field)
    ]
    if train.num_layers < pretrain.num_layers:
        differences.append(f"num_layers: classifier {train.num_layers}, language model {pretrain.num_layers}")
    if differences:
        raise ValueError(
            "the classifier's encoder must match the pretrained language model's: " + "; ".join(differences)
        )


def transfer_encoder(language_model: keras.Model, classifier: keras.Model) -> list[str]:
    """Copies embedding and LSTM weights by layer name; returns the names of the layers copied."""
    copied = []
    for layer in encoder_layers(language_model):
        name, source = layer.name, layer.get_weights()
        target = classifier.get_layer(name)
        shapes = [w.shape for w in target.get_weights()]
        if shapes != [np.shape(w) for w in source]:
            raise ValueError(f"layer {name}: language model weights {[np.shape(w) for w in source]} vs {shapes}")
        target.set_weights(source)
        copied.append(name)
    return copied
