"""The typed training config: checks, unknown keys, flag overrides."""

import argparse
import json

import pytest

from lstm_model.config import TrainConfig, add_config_flags, resolve_config


def test_defaults_are_valid_and_round_trip():
    config = TrainConfig()
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config


def test_unknown_keys_are_rejected():
    with pytest.raises(ValueError, match="unknown config keys"):
        TrainConfig.from_dict({"lstm_unitz": 3})


@pytest.mark.parametrize(
    "values",
    [
        {"lstm_units": 0},
        {"dropout": 1.0},
        {"word_dropout": -0.1},
        {"spatial_dropout": 1.0},
        {"reduce_lr_factor": 0.0},
        {"reduce_lr_factor": 1.5},
        {"ema_momentum": 1.0},
        {"pooling": "avg"},
        {"truncate": "middle"},
        {"learning_rate": 0},
        {"epochs": 1.5},
    ],
)
def test_bad_values_raise_value_error(values):
    with pytest.raises(ValueError):
        TrainConfig.from_dict(values)


def test_file_then_flags(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"lstm_units": 12, "epochs": 7}))
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    args = parser.parse_args(["--epochs", "2", "--bidirectional", "false"])
    config = resolve_config(str(path), args)
    assert (config.lstm_units, config.epochs, config.bidirectional) == (12, 2, False)


def test_every_flag_is_described_by_its_field_comment():
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    helps = {action.dest: action.help for action in parser._actions if action.dest in TrainConfig.__dataclass_fields__}
    assert set(helps) == set(TrainConfig.__dataclass_fields__)
    assert (
        helps["word_dropout"]
        == "training only: share of tokens replaced by [UNK] before the embedding (0..1) (default: 0.2)"
    )
    assert all(not text.startswith(" (default") for text in helps.values()), helps
