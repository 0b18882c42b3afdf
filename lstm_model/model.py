"""The LSTM sentiment classifier, functional API.

token ids [batch, time] int32 (0 = padding)
  -> WordDropout (training only)      [batch, time]  a share of tokens -> [UNK]
  -> Embedding (mask_zero)            [batch, time, embedding_dim]
  -> Dropout, SpatialDropout1D        (elementwise; whole embedding channels)
  -> (Bi)LSTM x num_layers            [batch, time, units * directions]
  -> pooling: masked max ++ mean      [batch, 2 * units * directions]
     or the last state                [batch, units * directions]
  -> Dropout -> Dense(1, sigmoid)     [batch, 1]  P(label == LABELS[1])

The LSTM layers keep Keras' cuDNN-compatible defaults (tanh / sigmoid, no
recurrent dropout, not unrolled, right padding), so on a GPU the same model runs
the fused cuDNN kernel with no code change.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from lstm_model.config import TrainConfig
from schemas import names

# Layers of the encoder (names shared by the classifier and the language model, lstm_model.language_model):
# what pretraining transfers, what gradual unfreezing freezes and what `encoder_lr_multiplier` slows.
ENCODER_LAYER_PREFIXES = ("embedding", "bidirectional_", "lstm_")


def encoder_layers(model: keras.Model) -> list[layers.Layer]:
    """The embedding and (Bi)LSTM layers of `model` (layers with weights whose names mark the encoder)."""
    return [layer for layer in model.layers if layer.name.startswith(ENCODER_LAYER_PREFIXES) and layer.weights]


@keras.saving.register_keras_serializable(package="lstm_model")
class EncoderScaledAdam(keras.optimizers.Adam):
    """Adam whose encoder variables (embedding, LSTM) step at learning_rate x `encoder_multiplier`.

    Discriminative fine-tuning (ULMFiT): pretrained layers move more slowly than the new
    classifier head, so fine-tuning on few labels does not wash out what pretraining learnt.
    """

    def __init__(self, encoder_multiplier: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < encoder_multiplier <= 1.0:
            raise ValueError(f"encoder_multiplier must be in (0, 1], got {encoder_multiplier}")
        self.encoder_multiplier = encoder_multiplier

    def build(self, variables):
        super().build(variables)
        self._encoder_keys = {
            self._var_key(variable)
            for variable in variables
            if variable.path.split("/")[0].startswith(ENCODER_LAYER_PREFIXES)
        }

    def update_step(self, gradient, variable, learning_rate):
        if self._var_key(variable) in self._encoder_keys:
            learning_rate = learning_rate * self.encoder_multiplier
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "encoder_multiplier": self.encoder_multiplier}


@keras.saving.register_keras_serializable(package="lstm_model")
class MaskedMaxMeanPooling1D(layers.Layer):
    """[batch, time, features] -> [batch, 2 * features]: max and mean over unmasked steps.

    Padding steps are ignored; a row with no unmasked step (an empty text) pools
    to zeros instead of -inf / NaN.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        valid = ops.expand_dims(ops.cast(mask, "bool"), -1)  # [batch, time, 1]
        weights = ops.cast(valid, inputs.dtype)
        count = ops.sum(weights, axis=1)  # [batch, 1]
        mean = ops.sum(inputs * weights, axis=1) / ops.maximum(count, 1.0)
        maximum = ops.max(ops.where(valid, inputs, ops.full_like(inputs, -1e9)), axis=1)
        maximum = ops.where(count > 0, maximum, ops.zeros_like(maximum))
        return ops.concatenate([maximum, mean], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[2])


@keras.saving.register_keras_serializable(package="lstm_model")
class WordDropout(layers.Layer):
    """[batch, time] int ids -> same shape; in training, each real token becomes [UNK] with probability `rate`.

    A regulariser on the input words (the embedding cannot memorise rare words of a
    training review); padding stays padding so the mask is unchanged. The identity at
    inference, so serving never sees it.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        draw = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator)
        drop = ops.logical_and(draw < self.rate, inputs > names.OOV_ID)
        return ops.where(drop, ops.full_like(inputs, names.OOV_ID), inputs)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def build_classifier(config: TrainConfig, vocabulary_size: int) -> keras.Model:
    """Returns an uncompiled classifier for token ids from a vocabulary of `vocabulary_size`."""
    if vocabulary_size < 3:
        raise ValueError(f"vocabulary_size must be at least 3 (two reserved ids + one token), got {vocabulary_size}")
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = token_ids
    if config.word_dropout > 0:
        x = WordDropout(config.word_dropout, seed=config.seed, name="word_dropout")(x)
    x = layers.Embedding(vocabulary_size, config.embedding_dim, mask_zero=True, name="embedding")(x)
    x = layers.Dropout(config.dropout, name="embedding_dropout")(x)
    if config.spatial_dropout > 0:
        x = layers.SpatialDropout1D(config.spatial_dropout, name="embedding_spatial_dropout")(x)
    for index in range(config.num_layers):
        is_last = index == config.num_layers - 1
        return_sequences = not is_last or config.pooling == "max_mean"
        lstm = layers.LSTM(config.lstm_units, return_sequences=return_sequences, name=f"lstm_{index + 1}")
        if config.bidirectional:
            x = layers.Bidirectional(lstm, name=f"bidirectional_{index + 1}")(x)
        else:
            x = lstm(x)
    if config.pooling == "max_mean":
        x = MaskedMaxMeanPooling1D(name="max_mean_pool")(x)
    x = layers.Dropout(config.dropout, name="classifier_dropout")(x)
    probability = layers.Dense(1, activation="sigmoid", name="probability")(x)
    return keras.Model(token_ids, probability, name="lstm_sentiment_classifier")


def compile_classifier(model: keras.Model, config: TrainConfig, encoder_multiplier: float = 1.0) -> keras.Model:
    """Adam (with weight EMA when configured); encoder layers at learning_rate x `encoder_multiplier`."""
    model.compile(
        optimizer=EncoderScaledAdam(
            encoder_multiplier=encoder_multiplier,
            learning_rate=config.learning_rate,
            clipnorm=config.clipnorm,
            use_ema=config.ema_momentum > 0,
            ema_momentum=config.ema_momentum,
        ),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )
    return model
