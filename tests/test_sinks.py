"""Deterministic sharded writers: same input, same bytes; readable by TF, pandas, DuckDB."""

import hashlib
import json

import apache_beam as beam
import duckdb
import pyarrow as pa
import tensorflow as tf
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.testing.test_pipeline import TestPipeline

from pipelines import sinks, spill
from pipelines.common import stable_bucket


def write(tmp_path, name, payloads, **kwargs):
    with TestPipeline() as p:
        _ = (
            p
            | beam.Create(payloads)
            | sinks.WriteSortedShards(str(tmp_path / name / "data"), kwargs.pop("suffix"), **kwargs)
        )
    return sorted((tmp_path / name).iterdir())


def digest(paths):
    return [hashlib.sha256(path.read_bytes()).hexdigest() for path in paths]


def test_tfrecord_shards_are_byte_identical_across_runs(tmp_path):
    payloads = [(f"id{i:03d}", f"record {i}".encode()) for i in range(250)]
    first = write(tmp_path, "a", payloads, suffix=".tfrecord.gz", records_per_shard=100)
    second = write(tmp_path, "b", list(reversed(payloads)), suffix=".tfrecord.gz", records_per_shard=100)
    assert [p.name for p in first] == [f"data-0000{i}-of-00003.tfrecord.gz" for i in range(3)]
    assert digest(first) == digest(second)
    records = [r.numpy() for r in tf.data.TFRecordDataset([str(p) for p in first], compression_type="GZIP")]
    assert sorted(records) == sorted(payload for _, payload in payloads)


def test_jsonl_and_parquet(tmp_path):
    rows = [(f"k{i}", {"id": f"k{i}", "value": i}) for i in range(5)]
    (jsonl,) = write(
        tmp_path, "j", rows, suffix=".jsonl", file_format=sinks.FORMAT_JSONL, compression=CompressionTypes.UNCOMPRESSED
    )
    assert [json.loads(line)["id"] for line in jsonl.read_text().splitlines()] == [f"k{i}" for i in range(5)]
    schema = pa.schema([pa.field("id", pa.string()), pa.field("value", pa.int64())])
    (parquet,) = write(tmp_path, "p", rows, suffix=".parquet", file_format=sinks.FORMAT_PARQUET, schema=schema)
    assert duckdb.sql(f"select sum(value) from '{parquet}'").fetchall() == [(10,)]


def test_every_key_is_in_the_spill_buckets_its_shard_reads():
    keys = [f"review-{i}" for i in range(3000)]
    for buckets in (1, 4, 1024):
        for num_shards in (1, 3, 7, 1024, 5000):
            for key in keys:
                shard = stable_bucket(key, num_shards)
                assert stable_bucket(key, buckets) in spill.buckets_of_shard(shard, num_shards, buckets)


def test_many_spill_files_and_more_shards_than_buckets(tmp_path, monkeypatch):
    # 7 records per spill file and 4 hash ranges, 25 shards: every shard reads
    # parts of many spill files, and each range is read by several shards.
    monkeypatch.setattr(spill, "SPILL_RECORDS", 7)
    monkeypatch.setattr(spill, "SPILL_BUCKETS", 4)
    payloads = [(f"id{i:03d}", f"record {i}".encode()) for i in range(250)]
    shards = write(
        tmp_path, "s", payloads, suffix=".tfrecord", compression=CompressionTypes.UNCOMPRESSED, records_per_shard=10
    )
    assert [p.name for p in shards] == [f"data-{i:05d}-of-00025.tfrecord" for i in range(25)]  # spill files gone
    seen = []
    for index, path in enumerate(shards):
        records = [r.numpy() for r in tf.data.TFRecordDataset([str(path)])]
        keys = [f"id{int(r.split()[1]):03d}" for r in records]
        assert keys == sorted(keys)
        assert all(stable_bucket(key, 25) == index for key in keys)
        seen.extend(records)
    assert sorted(seen) == sorted(payload for _, payload in payloads)


def test_no_records_no_file(tmp_path):
    with TestPipeline() as p:
        _ = (
            p
            | beam.Create([("k", b"x")])
            | beam.Filter(lambda kv: False)
            | sinks.WriteSortedShards(str(tmp_path / "e" / "data"), ".tfrecord.gz")
        )
    assert not (tmp_path / "e").exists() or list((tmp_path / "e").iterdir()) == []


def test_a_spill_index_packs_into_bytes_and_back():
    from pipelines import spill

    index = {0: (0, 17), 3: (17, 5), 4095: (22, 2**40)}
    packed = spill.pack_index(index)
    assert isinstance(packed, bytes) and len(packed) == 3 * 24
    assert spill.unpack_index(packed) == index
    assert spill.unpack_index(spill.pack_index({})) == {}
