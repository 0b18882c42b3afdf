"""Typed, flat training configuration (nanoGPT style).

Every field has a default, a unit and a check. A config comes from defaults,
then an optional JSON file, then command-line flags (one per field); unknown
keys are rejected. The resolved config is written next to every model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from schemas import names


@dataclasses.dataclass
class TrainConfig:
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

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        positive = (
            "embedding_dim",
            "lstm_units",
            "num_layers",
            "max_tokens",
            "batch_size",
            "bucket_width",
            "epochs",
            "shuffle_buffer",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
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
        if self.max_train_examples < 0 or self.early_stopping_patience < 0:
            raise ValueError("max_train_examples and early_stopping_patience must be >= 0")

    # ------------------------------------------------------------------ I/O
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (--lstm_units 64 ...), default None = not given."""
    group = parser.add_argument_group("model and training config (override --config)")
    for field in dataclasses.fields(TrainConfig):
        if field.type in ("bool", bool):
            kind = _parse_bool
        elif field.type in ("int", int):
            kind = int
        elif field.type in ("float", float):
            kind = float
        else:
            kind = str
        description = _FIELD_HELP.get(field.name, "")
        group.add_argument(f"--{field.name}", type=kind, default=None, help=f"{description} (default: {field.default})")


def _field_comments() -> dict[str, str]:
    """{field: its trailing comment} from the dataclass source: the comment is the one description of a field."""
    import inspect
    import re

    pattern = re.compile(r"^    (\w+): [\w\[\]| ]+ = .+?  # (.+)$")
    try:
        source = inspect.getsource(TrainConfig)
    except (OSError, TypeError):  # installed without sources: flags keep their defaults as help
        return {}
    return {m.group(1): m.group(2) for m in map(pattern.match, source.splitlines()) if m}


_FIELD_HELP = _field_comments()


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def resolve_config(config_path: str | None, args: argparse.Namespace) -> TrainConfig:
    """Defaults < JSON file < flags."""
    values: dict[str, Any] = {}
    if config_path:
        values.update(TrainConfig.from_json(config_path).to_dict())
    for field in dataclasses.fields(TrainConfig):
        flag = getattr(args, field.name, None)
        if flag is not None:
            values[field.name] = flag
    return TrainConfig.from_dict(values)
