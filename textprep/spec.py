"""TextSpec: how raw text becomes tokens, as a small record without TensorFlow.

Decided at ingest, written to the manifest, read back by training and export
(`textprep.preprocessing` turns it into TensorFlow ops). Kept apart from those
ops so that a pipeline's launcher, which only builds the graph and hands it to
the runner, does not import TensorFlow (10 s of CPU) just to name the spec.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from schemas import names


@dataclasses.dataclass(frozen=True)
class TextSpec:
    """How raw text becomes tokens; decided at ingest, recorded in the manifest, read back everywhere.

    lowercase: Unicode-aware lowercasing. strip_html: drop tags, decode character
    references. whitespace: one of `schemas.names.WHITESPACE_MODES`. tokenizer: one of
    `schemas.names.TOKENIZERS`. reserved_tokens: the first ids of the vocabulary
    ([PAD], [UNK] for a classifier; also [BOS], [EOS] for generative tasks).
    """

    lowercase: bool = True
    strip_html: bool = True
    whitespace: str = "collapse"
    tokenizer: str = "word"
    reserved_tokens: tuple[str, ...] = names.RESERVED_TOKENS

    def __post_init__(self):
        if self.whitespace not in names.WHITESPACE_MODES:
            raise ValueError(f"whitespace must be one of {names.WHITESPACE_MODES}, got {self.whitespace!r}")
        if self.tokenizer not in names.TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {names.TOKENIZERS}, got {self.tokenizer!r}")
        object.__setattr__(self, "reserved_tokens", tuple(self.reserved_tokens))
        if self.reserved_tokens[: len(names.RESERVED_TOKENS)] != names.RESERVED_TOKENS:
            raise ValueError(f"reserved tokens must start with {names.RESERVED_TOKENS}, got {self.reserved_tokens}")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "reserved_tokens": list(self.reserved_tokens)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TextSpec:
        """From a manifest's "preprocessing" block; datasets written before TextSpec existed held only "lowercase"."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if k == "reserved_tokens" else v) for k, v in values.items() if k in known})


def as_spec(spec: TextSpec | bool) -> TextSpec:
    """A TextSpec, also from the older `lowercase` bool (word tokens, HTML stripped, whitespace collapsed)."""
    return spec if isinstance(spec, TextSpec) else TextSpec(lowercase=bool(spec))
