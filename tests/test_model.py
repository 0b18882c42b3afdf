"""The classifier: shapes, masking, and no NaN for empty rows."""

import numpy as np
import pytest

from lstm_model.config import TrainConfig
from lstm_model.model import MaskedMaxMeanPooling1D, WordDropout, build_classifier
from schemas import names


def test_masked_pooling_ignores_padding_and_handles_empty_rows():
    values = np.array(
        [[[1.0, -2.0], [3.0, -4.0], [100.0, 100.0]], [[5.0, 5.0], [6.0, 6.0], [7.0, 7.0]]], dtype="float32"
    )
    mask = np.array([[True, True, False], [False, False, False]])
    pooled = MaskedMaxMeanPooling1D()(values, mask=mask).numpy()
    np.testing.assert_allclose(pooled[0], [3.0, -2.0, 2.0, -3.0])
    np.testing.assert_allclose(pooled[1], [0.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(lstm_units=4, embedding_dim=8),
        TrainConfig(lstm_units=4, embedding_dim=8, bidirectional=False, pooling="last", num_layers=2),
    ],
)
def test_classifier_outputs_probabilities(config):
    model = build_classifier(config, vocabulary_size=20)
    ids = np.array([[2, 3, 4, 0], [5, 0, 0, 0], [0, 0, 0, 0]], dtype="int32")
    probabilities = model(ids).numpy()
    assert probabilities.shape == (3, 1)
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_tiny_vocabulary_is_rejected():
    with pytest.raises(ValueError, match="vocabulary_size"):
        build_classifier(TrainConfig(), vocabulary_size=2)


def test_word_dropout_replaces_real_tokens_with_unk_only_in_training():
    ids = np.array([[5, 6, 7, 8, 9, 10, 11, 12, 0, 0]] * 64, dtype="int32")
    layer = WordDropout(0.3, seed=1)
    np.testing.assert_array_equal(layer(ids), ids)  # inference: identity
    dropped = np.asarray(layer(ids, training=True))
    np.testing.assert_array_equal(dropped[:, 8:], 0)  # padding stays padding, so the mask is unchanged
    changed = dropped[:, :8] != ids[:, :8]
    assert set(np.unique(dropped[:, :8][changed])) == {names.OOV_ID}
    assert 0.2 < changed.mean() < 0.4
    with pytest.raises(ValueError, match="rate"):
        WordDropout(1.0)


def test_regularised_classifier_saves_and_loads(tmp_path):
    import keras

    config = TrainConfig(embedding_dim=8, lstm_units=4, word_dropout=0.2, spatial_dropout=0.1)
    model = build_classifier(config, vocabulary_size=20)
    ids = np.array([[3, 4, 5, 0], [6, 7, 0, 0]], dtype="int32")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded(ids), model(ids), rtol=1e-6)
