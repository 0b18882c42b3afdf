"""The typed training config: checks, unknown keys, flag overrides."""

import argparse
import json

import pytest

from lstm_model.config import PretrainConfig, TrainConfig, add_config_flags, resolve_config


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
        {"encoder_lr_multiplier": 0.0},
        {"freeze_encoder_epochs": -1},
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


@pytest.mark.parametrize("config_class", [TrainConfig, PretrainConfig])
def test_every_field_of_both_configs_has_a_described_flag(config_class):
    parser = argparse.ArgumentParser()
    add_config_flags(parser, config_class)
    fields = config_class.__dataclass_fields__
    helps = {action.dest: action.help for action in parser._actions if action.dest in fields}
    assert set(helps) == set(fields)
    assert all(not text.startswith(" (default") for text in helps.values()), helps


def test_pretrain_config_from_file_then_flags(tmp_path):
    path = tmp_path / "lm.json"
    path.write_text(json.dumps({"lstm_units": 12, "num_sampled": 64}))
    parser = argparse.ArgumentParser()
    add_config_flags(parser, PretrainConfig)
    config = resolve_config(str(path), parser.parse_args(["--num_sampled", "0"]), PretrainConfig)
    assert (config.lstm_units, config.num_sampled) == (12, 0)
    assert PretrainConfig.from_dict(json.loads(config.to_json())) == config
