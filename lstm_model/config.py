"""Typed, flat configurations (nanoGPT style): the classifier's and the language model's.

Every field has a default, a unit and a check. A config comes from defaults,
then an optional JSON file, then command-line flags (one per field); unknown
keys are rejected. The resolved config is written next to every model.

* `TrainConfig`: the classifier (`python -m lstm_model.train`), optionally
  initialised from a pretrained language model (`pretrained_dir`).
* `PretrainConfig`: the (bidirectional) LSTM language model pretrained on
  unlabeled text (`python -m lstm_model.pretrain`).
* `LanguageModelConfig`: the causal (forward) stacked LSTM language model of the
  language_model task (`python -m lstm_model.train` on a language_model dataset).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from schemas import names


class _ConfigIO:
    """Dict/JSON round trip shared by the config dataclasses; unknown keys are rejected."""

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | Path):
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _check_positive(config, names_: tuple[str, ...]) -> None:
    for name in names_:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclasses.dataclass
class TrainConfig(_ConfigIO):
    # --- model
    bidirectional: bool = True  # BiLSTM (True) or forward LSTM (False)
    embedding_dim: int = 128  # width of the token embedding
    lstm_units: int = 64  # hidden units per direction and layer
    num_layers: int = 1  # stacked (Bi)LSTM layers
    pooling: str = "max_mean"  # "last": final state; "max_mean": masked max + mean over time
    dropout: float = 0.5  # drop rate on embeddings and before the classifier (0..1)
    spatial_dropout: float = 0.0  # drop rate of whole embedding channels (SpatialDropout1D), after dropout (0..1)
    word_dropout: float = 0.2  # training only: share of tokens replaced by [UNK] before the embedding (0..1)
    # --- input
    max_tokens: int = 500  # tokens kept per text, training and serving alike
    truncate: str = "head_tail"  # "head": first max_tokens tokens; "tail": last; "head_tail": first 1/4 + last 3/4
    batch_size: int = 64  # examples per step
    bucket_width: int = 32  # token-length bucket width for batching similar lengths
    shuffle_buffer: int = 25_000  # examples in the shuffle buffer
    max_train_examples: int = 0  # train on N records chosen by a hash of their ids; the baseline on the same (0 = all)
    # --- optimisation
    epochs: int = 5  # upper bound; early stopping usually ends sooner
    learning_rate: float = 1e-3  # Adam step size
    clipnorm: float = 1.0  # gradient norm clip
    early_stopping_patience: int = 2  # epochs without val_loss improvement before stopping
    reduce_lr_factor: float = 0.2  # learning rate x this after an epoch without val_loss improvement (1 = constant)
    ema_momentum: float = 0.99  # per-step weight average for validation and checkpoints (0 = off; 0.9: short runs)
    seed: int = 42  # seeds weights, shuffling and dropout
    # --- transfer from a pretrained language model (lstm_model.pretrain)
    pretrained_dir: str = ""  # LM directory whose embedding and LSTM weights start the classifier ("" = from scratch)
    freeze_encoder_epochs: int = 0  # with pretrained_dir: first epochs train only the classifier head, then all
    encoder_lr_multiplier: float = 1.0  # with pretrained_dir: embedding and LSTM learn at learning_rate x this

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check_positive(
            self,
            (
                "embedding_dim",
                "lstm_units",
                "num_layers",
                "max_tokens",
                "batch_size",
                "bucket_width",
                "epochs",
                "shuffle_buffer",
            ),
        )
        for name in ("dropout", "spatial_dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.pooling not in ("last", "max_mean"):
            raise ValueError(f"pooling must be 'last' or 'max_mean', got {self.pooling!r}")
        if self.truncate not in names.TRUNCATE_MODES:
            raise ValueError(f"truncate must be one of {names.TRUNCATE_MODES}, got {self.truncate!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0.0 < self.reduce_lr_factor <= 1.0:
            raise ValueError(f"reduce_lr_factor must be in (0, 1], got {self.reduce_lr_factor}")
        if not 0.0 <= self.ema_momentum < 1.0:
            raise ValueError(f"ema_momentum must be in [0, 1), got {self.ema_momentum}")
        if self.clipnorm <= 0:
            raise ValueError(f"clipnorm must be > 0, got {self.clipnorm}")
        if self.max_train_examples < 0 or self.early_stopping_patience < 0 or self.freeze_encoder_epochs < 0:
            raise ValueError("max_train_examples, early_stopping_patience and freeze_encoder_epochs must be >= 0")
        if not 0.0 < self.encoder_lr_multiplier <= 1.0:
            raise ValueError(f"encoder_lr_multiplier must be in (0, 1], got {self.encoder_lr_multiplier}")


@dataclasses.dataclass
class PretrainConfig(_ConfigIO):
    # --- encoder: must equal the classifier's (embedding_dim, lstm_units, num_layers, bidirectional) to transfer
    bidirectional: bool = True  # two LMs in one BiLSTM: forward states predict the next token, backward the previous
    embedding_dim: int = 128  # width of the token embedding
    lstm_units: int = 64  # hidden units per direction and layer
    num_layers: int = 1  # stacked LSTM layers (1 when bidirectional: a stacked BiLSTM would see the target)
    dropout: float = 0.1  # drop rate on embeddings and LSTM outputs (0..1)
    # --- input
    splits: str = "unsup,train"  # comma-separated dataset splits to learn from; never test
    sequence_length: int = 128  # tokens per training window (reviews are concatenated, then cut)
    batch_size: int = 64  # windows per step
    shuffle_buffer: int = 20_000  # windows in the shuffle buffer
    # --- output layer
    num_sampled: int = 1024  # sampled softmax: vocabulary ids drawn per step (log-uniform); 0 = full softmax
    # --- optimisation
    epochs: int = 1  # passes over the text (each bounded by steps_per_epoch)
    steps_per_epoch: int = 0  # steps per epoch; 0 = the whole text; a bound keeps a CPU run to a known budget
    learning_rate: float = 2e-3  # Adam step size
    clipnorm: float = 1.0  # gradient norm clip
    validation_windows: int = 1024  # windows of the validation split for exact (full softmax) perplexity
    seed: int = 42  # seeds weights, shuffling, dropout and sampling

    def __post_init__(self) -> None:
        self.validate()

    @property
    def split_list(self) -> list[str]:
        return [split.strip() for split in self.splits.split(",") if split.strip()]

    def validate(self) -> None:
        _check_positive(
            self,
            ("embedding_dim", "lstm_units", "num_layers", "sequence_length", "batch_size", "shuffle_buffer", "epochs"),
        )
        _check_positive(self, ("validation_windows",))
        if self.sequence_length < 2:
            raise ValueError(
                f"sequence_length must be at least 2 (a token and its neighbour), got {self.sequence_length}"
            )
        if self.bidirectional and self.num_layers != 1:
            raise ValueError(
                "a bidirectional language model has one layer: in a stacked BiLSTM the second layer's forward"
                f" states see the backward states of the first, i.e. the tokens they must predict (got num_layers={self.num_layers})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.num_sampled < 0 or self.steps_per_epoch < 0:
            raise ValueError("num_sampled and steps_per_epoch must be >= 0")
        if self.learning_rate <= 0 or self.clipnorm <= 0:
            raise ValueError("learning_rate and clipnorm must be > 0")
        if not self.split_list:
            raise ValueError("splits must name at least one dataset split")
        for split in self.split_list:
            if split not in names.SPLITS:
                raise ValueError(f"unknown split {split!r} in splits; known: {names.SPLITS}")
            if split == names.SPLIT_TEST:
                raise ValueError("splits must not include test: the language model would see the test texts")


@dataclasses.dataclass
class LanguageModelConfig(_ConfigIO):
    # --- model
    embedding_dim: int = 64  # width of the token embedding
    lstm_units: int = 384  # hidden units per layer
    num_layers: int = 1  # stacked forward LSTM layers (on 2 CPU cores one wide layer learns fastest; see README)
    dropout: float = 0.1  # drop rate after the embedding, between LSTM layers and before the softmax (0..1)
    tie_embeddings: bool = False  # output layer reuses the embedding matrix (via a projection if widths differ)
    num_sampled: int = -1  # sampled softmax size in training (0: full; -1: full up to 4096 tokens, else 1024)
    # --- input
    sequence_length: int = 64  # tokens per training window (the backpropagation horizon)
    batch_size: int = 32  # windows per step, each at a random offset of the training stream
    # --- optimisation
    epochs: int = 100  # upper bound; an epoch is steps_per_epoch steps (windows are drawn at random offsets)
    steps_per_epoch: int = 250  # steps between validations, checkpoints and early-stopping checks
    learning_rate: float = 5e-3  # Adam step size (peak of the cosine schedule)
    lr_schedule: str = "cosine"  # "cosine": from learning_rate down to 1/10 of it over the run (over max_minutes when set, else the steps); "plateau": constant, x reduce_lr_factor after an epoch without improvement
    reduce_lr_factor: float = 0.5  # learning rate x this after an epoch without validation improvement (1 = constant)
    clipnorm: float = 5.0  # gradient norm clip (per variable)
    early_stopping_patience: int = 3  # epochs without validation improvement before stopping (0 = never stop early)
    max_minutes: float = 0.0  # wall-clock training budget in minutes, validation included; 0 = none
    validation_tokens: int = 0  # tokens of the validation split measured each epoch; 0 = all of them (exact)
    seed: int = 42  # seeds weights, window offsets, dropout and sampling

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check_positive(self, ("embedding_dim", "lstm_units", "num_layers", "sequence_length", "batch_size", "epochs"))
        _check_positive(self, ("steps_per_epoch",))
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.num_sampled < -1:
            raise ValueError(f"num_sampled must be -1 (auto), 0 (full softmax) or positive, got {self.num_sampled}")
        if self.learning_rate <= 0 or self.clipnorm <= 0:
            raise ValueError("learning_rate and clipnorm must be > 0")
        if not 0.0 < self.reduce_lr_factor <= 1.0:
            raise ValueError(f"reduce_lr_factor must be in (0, 1], got {self.reduce_lr_factor}")
        if self.lr_schedule not in ("cosine", "plateau"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'plateau', got {self.lr_schedule!r}")
        if self.early_stopping_patience < 0 or self.validation_tokens < 0 or self.max_minutes < 0:
            raise ValueError("early_stopping_patience, validation_tokens and max_minutes must be >= 0")

    def scheduled_learning_rate(self, step: int, minutes: float) -> float | None:
        """The cosine schedule's rate after `step` steps and `minutes` of training (None: not cosine).

        Progress is the share of the budget used: of max_minutes when set (users on CPU think in
        minutes), else of epochs x steps_per_epoch; the rate falls from learning_rate to a tenth of it.
        """
        import math

        if self.lr_schedule != "cosine":
            return None
        if self.max_minutes:
            progress = minutes / self.max_minutes
        else:
            progress = step / (self.epochs * self.steps_per_epoch)
        progress = min(max(progress, 0.0), 1.0)
        return self.learning_rate * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))

    def sampled_candidates(self, vocabulary_size: int) -> int:
        """Candidates of the sampled softmax for this vocabulary (0 = the full softmax)."""
        if self.num_sampled == -1:
            return 0 if vocabulary_size <= 4096 else 1024
        return 0 if self.num_sampled >= vocabulary_size else self.num_sampled


def add_config_flags(parser: argparse.ArgumentParser, config_class: type = None) -> None:
    """One flag per field of `config_class` (default TrainConfig): --lstm_units 64 ..., default None = not given."""
    config_class = config_class or TrainConfig
    field_help = _field_comments(config_class)
    group = parser.add_argument_group("model and training config (override --config)")
    for field in dataclasses.fields(config_class):
        if field.type in ("bool", bool):
            kind = _parse_bool
        elif field.type in ("int", int):
            kind = int
        elif field.type in ("float", float):
            kind = float
        else:
            kind = str
        description = field_help.get(field.name, "")
        group.add_argument(f"--{field.name}", type=kind, default=None, help=f"{description} (default: {field.default})")


def _field_comments(config_class: type) -> dict[str, str]:
    """{field: its trailing comment} from the dataclass source: the comment is the one description of a field."""
    import inspect
    import re

    pattern = re.compile(r"^    (\w+): [\w\[\]| ]+ = .+?  # (.+)$")
    try:
        source = inspect.getsource(config_class)
    except (OSError, TypeError):  # installed without sources: flags keep their defaults as help
        return {}
    return {m.group(1): m.group(2) for m in map(pattern.match, source.splitlines()) if m}


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def resolve_config(config_path: str | None, args: argparse.Namespace, config_class: type = None):
    """Defaults < JSON file < flags, for `config_class` (default TrainConfig)."""
    config_class = config_class or TrainConfig
    values: dict[str, Any] = {}
    if config_path:
        values.update(config_class.from_json(config_path).to_dict())
    for field in dataclasses.fields(config_class):
        flag = getattr(args, field.name, None)
        if flag is not None:
            values[field.name] = flag
    return config_class.from_dict(values)
