"""The classifier: shapes, masking, and no NaN for empty rows."""

import numpy as np
import pytest

from lstm_model.config import TrainConfig
from lstm_model.model import MaskedMaxMeanPooling1D, build_classifier


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
