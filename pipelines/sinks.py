"""Deterministic sharded writers: the same input gives byte-identical files.

Beam's own file sinks place records into shards at random and in no order, so a
rerun gives different files (and checksums). Here a record's shard is a hash of
its key, records are sorted by key inside a shard, and GZIP headers carry no
timestamp: reruns on any runner give the same bytes, which is what lets a
manifest name its outputs by checksum.

Records never cross a stage boundary whole (a GroupByKey by shard would make
the local runner hold them all in its memory): the workers write them to spill
files (`pipelines.spill`) sorted into hash ranges as they stream past; once the
count, and so the number of shards, is known, each shard reads its hash range
from every spill file, sorts and writes. Peak memory is one spill buffer or one
shard per worker, whatever the corpus size.
"""

from __future__ import annotations

import json
import math

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.tfrecordio import _TFRecordUtil

from pipelines import spill

FORMAT_TFRECORD = "tfrecord"
FORMAT_JSONL = "jsonl"
FORMAT_PARQUET = "parquet"
FORMATS = (FORMAT_TFRECORD, FORMAT_JSONL, FORMAT_PARQUET)


def shard_path(prefix: str, shard: int, num_shards: int, suffix: str) -> str:
    return f"{prefix}-{shard:05d}-of-{num_shards:05d}{suffix}"


def num_shards_for(count: int, records_per_shard: int) -> int:
    return max(1, math.ceil(count / records_per_shard))


class _WriteShardDoFn(beam.DoFn):
    """(destination, shard number) -> (path, records) of the written shard."""

    def __init__(self, prefixes: dict[str, str], suffix: str, file_format: str, compression: str, schema, buckets: int):
        self.prefixes = prefixes
        self.suffix = suffix
        self.file_format = file_format
        self.compression = compression
        self.schema = schema
        self.buckets = buckets

    def process(self, item, spills: list[spill.SpillIndex], counts: dict[str, int], records_per_shard: int):
        destination, shard = item
        num_shards = num_shards_for(counts[destination], records_per_shard)
        path = shard_path(self.prefixes[destination], shard, num_shards, self.suffix)
        index = list(self.prefixes).index(destination)
        records = sorted(spill.read_spilled(spills, shard, num_shards, self.buckets, index), key=lambda kv: kv[0])
        if self.file_format == FORMAT_PARQUET:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist([payload for _, payload in records], schema=self.schema)
            with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                # Parquet compresses its pages itself (snappy), readable by pandas, DuckDB, BigQuery.
                pq.write_table(table, handle, compression="snappy")
            yield path, len(records)
            return
        with FileSystems.create(path, compression_type=self.compression) as handle:
            for _, payload in records:
                if self.file_format == FORMAT_TFRECORD:
                    _TFRecordUtil.write_record(handle, payload)
                else:
                    handle.write(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n")
        yield path, len(records)


class WriteSortedShardsTo(beam.PTransform):
    """(destination: str, (sort_key: str, payload)) -> (path: str, records: int) per written shard.

    One writer for several file sets (ingest's splits): `prefixes` maps each
    destination to its files' prefix. Each destination's shards are exactly what
    `WriteSortedShards` would write for its records alone: ceil(records /
    records_per_shard) shards, at least one (none for a destination without
    records), a record's shard a hash of its key, records sorted by key. One
    spill pass, one count and one shard-writing stage serve them all, so a
    pipeline with four splits runs a quarter of the steps four writers would.
    payload: serialized bytes for ``tfrecord``, a JSON-able dict for ``jsonl``, a
    row dict matching `schema` (a pyarrow.Schema) for ``parquet``.
    """

    def __init__(
        self,
        prefixes: dict[str, str],
        suffix: str,
        file_format: str = FORMAT_TFRECORD,
        compression: str = CompressionTypes.GZIP,
        records_per_shard: int = 20_000,
        schema=None,
    ):
        super().__init__()
        if file_format not in FORMATS:
            raise ValueError(f"unknown file_format {file_format!r}")
        if (file_format == FORMAT_PARQUET) != (schema is not None):
            raise ValueError("a schema is required for parquet, and only for parquet")
        if records_per_shard < 1:
            raise ValueError(f"records_per_shard must be >= 1, got {records_per_shard}")
        if not prefixes:
            raise ValueError("no destinations")
        self.prefixes = dict(prefixes)
        self.suffix = suffix
        self.file_format = file_format
        self.compression = compression
        self.records_per_shard = records_per_shard
        self.schema = schema

    def expand(self, destined_payloads):
        spill_dir = spill.new_spill_dir(next(iter(self.prefixes.values())))
        buckets = spill.SPILL_BUCKETS
        per_shard = self.records_per_shard
        counts = (
            destined_payloads
            | "Destination" >> beam.Map(lambda element: element[0])
            | "Count" >> beam.combiners.Count.PerElement()
        )
        spills = (
            destined_payloads
            | "Spill" >> beam.ParDo(spill.SpillDoFn(spill_dir, buckets, spill.SPILL_RECORDS, tuple(self.prefixes)))
            | "SpillIndex" >> beam.combiners.ToList()
        )
        return (
            counts
            # No records, no file (as for an empty split).
            | "ShardNumbers" >> beam.FlatMap(lambda dn: ((dn[0], s) for s in range(num_shards_for(dn[1], per_shard))))
            # Spread the shards over the workers (they are written in parallel).
            | "SpreadShards" >> beam.Reshuffle()
            | "WriteShard"
            >> beam.ParDo(
                _WriteShardDoFn(self.prefixes, self.suffix, self.file_format, self.compression, self.schema, buckets),
                spills=beam.pvalue.AsSingleton(spills),
                counts=beam.pvalue.AsDict(counts),
                records_per_shard=per_shard,
            )
            | "AllShards" >> beam.combiners.ToList()
            | "DeleteSpills" >> beam.Map(spill.delete_spills, beam.pvalue.AsSingleton(spills), spill_dir)
            | "ShardList" >> beam.FlatMap(lambda written: written)
        )


class WriteSortedShards(beam.PTransform):
    """(sort_key: str, payload) -> (path: str, records: int) per written shard.

    payload is serialized bytes for ``tfrecord``, a JSON-able dict for ``jsonl``, or
    a row dict matching `schema` (a pyarrow.Schema) for ``parquet``.
    The number of shards is ceil(records / records_per_shard), at least one; a
    shard holds the records whose key hashes to it, sorted by key. Records pass
    through spill files in ``PREFIX-spill-*/`` (see the module docstring), which
    are gone when the transform's output is. (`WriteSortedShardsTo` with one destination.)
    """

    def __init__(
        self,
        prefix: str,
        suffix: str,
        file_format: str = FORMAT_TFRECORD,
        compression: str = CompressionTypes.GZIP,
        records_per_shard: int = 20_000,
        schema=None,
    ):
        super().__init__()
        self.write = WriteSortedShardsTo({"": prefix}, suffix, file_format, compression, records_per_shard, schema)

    def expand(self, keyed_payloads):
        return keyed_payloads | "OneDestination" >> beam.Map(lambda kv: ("", kv)) | "Write" >> self.write


class WriteQuarantine(beam.PTransform):
    """QuarantineRecord -> (path, records) of ``OUT/quarantine/part-*.jsonl``, sorted by id and reason."""

    def __init__(self, output_dir: str):
        super().__init__()
        self.output_dir = output_dir

    def expand(self, quarantined):
        from pipelines.common import join
        from schemas import names

        return (
            quarantined
            | "KeyQuarantine" >> beam.Map(lambda q: (f"{q['id']}\x00{q['reason']}\x00{q['source']}", q))
            | "WriteQuarantine"
            >> WriteSortedShards(
                join(self.output_dir, names.QUARANTINE_DIR, "part"),
                ".jsonl",
                file_format=FORMAT_JSONL,
                compression=CompressionTypes.UNCOMPRESSED,
                records_per_shard=100_000,
            )
        )
