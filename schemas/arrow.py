"""Arrow schemas of the Parquet/JSONL outputs analysts read.

Scored Parquet opens as is in pandas, DuckDB and BigQuery: plain column types,
timestamps in UTC microseconds, no nested columns.
"""

from __future__ import annotations

import pyarrow as pa

# Columns of every scored row, in this order; pass-through columns follow.
SCORED_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),  # raw file the row came from
    pa.field("probability", pa.float32(), nullable=False),  # P(label == LABELS[1])
    pa.field("predicted_label", pa.string(), nullable=False),
    pa.field("predicted_label_id", pa.int32(), nullable=False),
    pa.field("num_tokens", pa.int32(), nullable=False),  # after cleaning, before truncation
    pa.field("num_oov", pa.int32(), nullable=False),  # of num_tokens, not in the model's vocabulary
    pa.field("model_version", pa.string(), nullable=False),
    pa.field("scored_at", pa.timestamp("us", tz="UTC"), nullable=False),  # run start
]


# Columns of every row scored by a language model (how likely the model finds each text), in this order.
LM_SCORED_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("nats_per_token", pa.float32(), nullable=False),  # mean negative log-likelihood per token
    pa.field("bits_per_char", pa.float32(), nullable=False),  # total bits / characters after cleaning
    pa.field("perplexity", pa.float32(), nullable=False),  # exp(nats_per_token)
    pa.field("total_nats", pa.float32(), nullable=False),  # negative log-likelihood of the whole text
    pa.field("num_tokens", pa.int32(), nullable=False),
    pa.field("num_chars", pa.int32(), nullable=False),  # after cleaning
    pa.field("num_oov", pa.int32(), nullable=False),
    pa.field("model_version", pa.string(), nullable=False),
    pa.field("scored_at", pa.timestamp("us", tz="UTC"), nullable=False),  # run start
]

# Columns of every generated row (pipelines.generate), in this order.
GENERATED_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("prompt", pa.string(), nullable=False),  # the prompt as given (before cleaning)
    pa.field("generated_text", pa.string(), nullable=False),  # the continuation only, cut at --stop if given
    pa.field("num_tokens", pa.int32(), nullable=False),  # tokens generated ([EOS] excluded)
    pa.field("log_prob", pa.float32(), nullable=False),  # natural log, of the generated tokens under the model
    pa.field("prompt_tokens", pa.int32(), nullable=False),
    pa.field("prompt_oov", pa.int32(), nullable=False),
    pa.field("seed", pa.int64(), nullable=False),  # this row's seed (from --seed and the row id)
    pa.field("temperature", pa.float32(), nullable=False),
    pa.field("top_k", pa.int32(), nullable=False),  # 0 = off
    pa.field("top_p", pa.float32(), nullable=False),  # 1 = off
    pa.field("max_new_tokens", pa.int32(), nullable=False),
    pa.field("model_version", pa.string(), nullable=False),
    pa.field("generated_at", pa.timestamp("us", tz="UTC"), nullable=False),  # run start
]

# Columns of every translated row (pipelines.translate), in this order.
TRANSLATED_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),  # raw file the row came from
    pa.field("source_text", pa.string(), nullable=False),  # the sentence as given (before cleaning)
    pa.field("translation", pa.string(), nullable=False),  # detokenized
    pa.field("log_prob", pa.float32(), nullable=False),  # natural log of the translation under the model
    pa.field("num_tokens", pa.int32(), nullable=False),  # target tokens ([EOS] excluded)
    pa.field("source_tokens", pa.int32(), nullable=False),
    pa.field("source_oov", pa.int32(), nullable=False),
    pa.field("decoding", pa.string(), nullable=False),  # "greedy" or "beam"
    pa.field("beam_width", pa.int32(), nullable=False),  # 1 for greedy
    pa.field("length_penalty", pa.float32(), nullable=False),
    pa.field("model_version", pa.string(), nullable=False),
    pa.field("translated_at", pa.timestamp("us", tz="UTC"), nullable=False),  # run start
]


def with_passthrough(fields: list[pa.Field], passthrough_columns: list[str] | tuple[str, ...] = ()) -> pa.Schema:
    """`fields` then the pass-through columns as nullable strings (ValueError on a clash)."""
    taken = {field.name for field in fields}
    for column in passthrough_columns:
        if column in taken:
            raise ValueError(f"pass-through column {column!r} clashes with an output column")
    return pa.schema(fields + [pa.field(column, pa.string()) for column in passthrough_columns])


def scored_schema(passthrough_columns: list[str] | tuple[str, ...] = ()) -> pa.Schema:
    """Schema of a classifier's scored Parquet; pass-through columns are nullable strings."""
    return with_passthrough(SCORED_FIELDS, passthrough_columns)


# One quarantined record (written as JSON lines).
QUARANTINE_FIELDS = [
    pa.field("id", pa.string()),
    pa.field("source", pa.string()),
    pa.field("stage", pa.string()),  # pipeline step that rejected it
    pa.field("reason", pa.string()),  # one of schemas.reasons
    pa.field("detail", pa.string()),  # what exactly was wrong
    pa.field("excerpt", pa.string()),  # first characters of the raw text, if any
]
QUARANTINE_SCHEMA = pa.schema(QUARANTINE_FIELDS)
