"""A causal language model serves a labelled dataset: same vocabulary (--vocabulary), encoder weights copied."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lstm_model import causal_lm, train
from pipelines import ingest
from schemas import names
from schemas.cli import UserError

LM_SHAPE = ["--embedding_dim", "16", "--lstm_units", "16", "--num_layers", "1"]


@pytest.fixture(scope="module")
def word_lm(tmp_path_factory, mini_dir):
    """A word-level causal LM on the IMDB slice's unlabeled reviews, and its dataset directory."""
    root = tmp_path_factory.mktemp("transfer")
    lm_dataset, lm_model = root / "lm_dataset", root / "lm_model"
    ingest.run(
        ["--task", "language_model", "--tokenizer", "word", "--input", str(mini_dir), "--output_dir", str(lm_dataset)]
        + ["--vocab_size", "5000"]
    )
    train.run(
        ["--dataset_dir", str(lm_dataset), "--model_dir", str(lm_model), *LM_SHAPE]
        + ["--epochs", "1", "--steps_per_epoch", "5", "--batch_size", "8", "--sequence_length", "32", "--verbose", "0"]
    )
    return root, lm_dataset, lm_model


@pytest.fixture(scope="module")
def labelled(word_lm, mini_dir):
    """The labelled slice ingested with the language model's vocabulary and text settings."""
    root, lm_dataset, _ = word_lm
    manifest = ingest.run(
        ["--input", str(mini_dir), "--output_dir", str(root / "labelled"), "--vocabulary", str(lm_dataset)]
    )
    return root / "labelled", manifest


def test_classifier_starts_from_a_causal_language_model(word_lm, labelled):
    root, lm_dataset, lm_model = word_lm
    labelled, manifest = labelled
    assert manifest["task"] == "classification" and manifest["preprocessing"]["tokenizer"] == "word"
    assert (labelled / names.VOCAB_FILE).read_bytes() == (lm_dataset / names.VOCAB_FILE).read_bytes()
    classifier_dir = root / "classifier"
    train.run(
        ["--dataset_dir", str(labelled), "--model_dir", str(classifier_dir), "--pretrained_dir", str(lm_model)]
        + ["--bidirectional", "false", *LM_SHAPE, "--epochs", "1", "--max_tokens", "64", "--verbose", "0"]
        + ["--ema_momentum", "0", "--freeze_encoder_epochs", "1"]
    )
    info = json.loads((classifier_dir / names.MODEL_INFO_FILE).read_text())
    assert info["pretrained"]["layers"] == ["embedding", "lstm_1"]
    # With the encoder frozen for its only epoch, the classifier's encoder is exactly the language model's.
    import keras

    from lstm_model import model as _registers_layers  # noqa: F401

    classifier = keras.models.load_model(classifier_dir / "model.keras")
    lm, _, _ = causal_lm.load_model_dir(str(lm_model))
    for name in ("embedding", "lstm_1"):
        for got, expected in zip(
            classifier.get_layer(name).get_weights(), lm.model.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(got, expected)


def test_mismatched_shape_or_vocabulary_is_a_one_line_error(word_lm, labelled, mini_dataset, tmp_path):
    _, _, lm_model = word_lm
    with pytest.raises(UserError, match="bidirectional"):
        train.run(
            ["--dataset_dir", str(labelled[0]), "--model_dir", str(tmp_path / "m1"), "--pretrained_dir"]
            + [str(lm_model), *LM_SHAPE, "--epochs", "1"]
        )
    with pytest.raises(UserError, match="another vocabulary"):
        train.run(
            ["--dataset_dir", str(mini_dataset[0]), "--model_dir", str(tmp_path / "m2"), "--pretrained_dir"]
            + [str(lm_model), "--bidirectional", "false", *LM_SHAPE, "--epochs", "1"]
        )
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()  # refused before writing anything
