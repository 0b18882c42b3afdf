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


def scored_schema(passthrough_columns: list[str] | tuple[str, ...] = ()) -> pa.Schema:
    """Schema of scored Parquet; pass-through columns are nullable strings."""
    taken = {field.name for field in SCORED_FIELDS}
    for column in passthrough_columns:
        if column in taken:
            raise ValueError(f"pass-through column {column!r} clashes with a scored column")
    return pa.schema(SCORED_FIELDS + [pa.field(column, pa.string()) for column in passthrough_columns])


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
