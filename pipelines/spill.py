"""Spill files: how records wait for a side input without the runner holding them.

Beam's local runner (FnApiRunner) keeps every PCollection that crosses a stage
boundary in its own process's memory, encoded: whatever waits for a side input
(a vocabulary, dedupe decisions, a record count) or goes through a GroupByKey.
With records of a large corpus, memory then grows with the corpus. Here the
records are written to temporary files by the workers as they stream past, and
only the files' names and small byte indexes cross the boundary; the next stage
reads the files back. This is the temp-file pattern of Beam's own file sinks,
and works on any Beam filesystem (local disk, GCS).

A spill file is a run of pickled lists of (key, value): one list per hash bucket
of the key, in bucket order, and an index of each bucket's (offset, length)
travels with the file's path, packed into bytes (`pack_index`). Spill files are
private to one pipeline run: they are
written and read by this code only, under a directory named ``*-spill-<random>``
next to the outputs, and deleted once read. A killed run leaves them behind in a directory still
marked as a run in progress; the next run into that directory clears them (`common.prepare_output_dir`).
"""

from __future__ import annotations

import io
import pickle
import struct
import uuid
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from pipelines.common import stable_bucket

# Hash ranges a spill file is sorted into. A shard reads the ranges that overlap
# its own, so with up to SPILL_BUCKETS shards each record is read about once;
# with more shards a range is read by (shards / SPILL_BUCKETS + 1) of them.
SPILL_BUCKETS = 1024
SPILL_RECORDS = 5_000  # records a worker buffers before writing a spill file

SpillIndex = tuple[str, bytes]  # (path, pack_index({bucket: (byte offset, byte length)}))


def pack_index(index: dict[int, tuple[int, int]]) -> bytes:
    """{bucket: (offset, length)} -> little-endian uint64 triples (24 bytes per bucket).

    A file of the shard writer has up to 4 x 1024 buckets. As a dict that is ~400 kB of Python
    objects per file; every worker holds the list of all files' indexes as a side input, so for
    aclImdb's 20 files ~8 MB (growing with the corpus), packed ~1 MB.
    """
    flat = [value for bucket in sorted(index) for value in (bucket, *index[bucket])]
    return struct.pack(f"<{len(flat)}Q", *flat)


def unpack_index(packed: bytes) -> dict[int, tuple[int, int]]:
    flat = struct.unpack(f"<{len(packed) // 8}Q", packed)
    return {flat[i]: (flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)}


def new_spill_dir(prefix: str) -> str:
    """A fresh directory name for one transform's spill files (unique per pipeline construction)."""
    return f"{prefix}-spill-{uuid.uuid4().hex[:12]}"


def buckets_of_shard(shard: int, num_shards: int, buckets: int) -> range:
    """Spill buckets that can hold records of `shard`.

    stable_bucket(key, n) is floor(fraction(key) * n), so shard s is the
    fraction range [s/n, (s+1)/n); one bucket of margin on each side absorbs
    float rounding, and records are filtered by their exact shard when read.
    """
    first = max(0, (shard * buckets) // num_shards - 1)
    last = min(buckets - 1, ((shard + 1) * buckets) // num_shards + 1)
    return range(first, last + 1)


class SpillDoFn(beam.DoFn):
    """(key, payload) -> (spill path, {bucket: (offset, length)}) per spill file written.

    A spill file is a run of pickled lists of (key, payload), one list per
    bucket in bucket order; the index gives each bucket's byte range.
    With `destinations` (names, in a fixed order) the elements are
    (destination, (key, payload)) and each destination has its own `buckets`
    ranges: destination i's records go to buckets [i * buckets, (i + 1) * buckets),
    so a shard of one destination reads none of the others' records.
    """

    def __init__(self, spill_dir: str, buckets: int, spill_records: int, destinations: tuple[str, ...] | None = None):
        self.spill_dir = spill_dir
        self.buckets = buckets
        self.spill_records = spill_records
        self.destinations = destinations
        self.first_bucket = {name: i * buckets for i, name in enumerate(destinations or ())}

    def start_bundle(self):
        self.pending: dict[int, list] = {}
        self.pending_count = 0

    def process(self, element):
        if self.destinations is None:
            kv, first = element, 0
        else:
            destination, kv = element
            first = self.first_bucket[destination]
        # One bucket (SpillUntil): nothing to hash.
        bucket = first + (stable_bucket(kv[0], self.buckets) if self.buckets > 1 else 0)
        self.pending.setdefault(bucket, []).append(kv)
        self.pending_count += 1
        if self.pending_count >= self.spill_records:
            yield self._spill()

    def finish_bundle(self):
        if self.pending_count:
            yield GlobalWindows.windowed_value(self._spill())

    def _spill(self) -> SpillIndex:
        # A fresh name per file: a retried bundle writes new files, and only the
        # files named by committed outputs are ever read.
        path = FileSystems.join(self.spill_dir, f"{uuid.uuid4().hex}.spill")
        index = {}
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            offset = 0
            for bucket in sorted(self.pending):
                blob = pickle.dumps(self.pending[bucket], protocol=pickle.HIGHEST_PROTOCOL)
                handle.write(blob)
                index[bucket] = (offset, len(blob))
                offset += len(blob)
        beam.metrics.Metrics.counter("spill", "files").inc()
        self.pending = {}
        self.pending_count = 0
        return path, pack_index(index)


def read_spilled(
    spills: list[SpillIndex], shard: int, num_shards: int, buckets: int, destination_index: int = 0
) -> list:
    """The (key, payload) pairs of `shard` from every spill file (made with `buckets`), in no particular order.

    `destination_index`: the position of the shard's destination in SpillDoFn's `destinations`.
    """
    first = destination_index * buckets
    wanted = [first + b for b in buckets_of_shard(shard, num_shards, buckets)]
    records = []
    for path, packed in spills:
        index = unpack_index(packed)
        ranges = [index[b] for b in wanted if b in index]
        if not ranges:
            continue
        # A shard's buckets are consecutive in the file: one read per spill file.
        start = ranges[0][0]
        end = ranges[-1][0] + ranges[-1][1]
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            handle.seek(start)
            data = io.BytesIO(handle.read(end - start))
        for _ in ranges:
            records.extend(kv for kv in pickle.load(data) if stable_bucket(kv[0], num_shards) == shard)
    return records


def read_spill_file(path: str) -> list[tuple[str, Any]]:
    """All (key, value) pairs of one spill file."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        data = io.BytesIO(handle.read())
    records = []
    while data.tell() < len(data.getbuffer()):
        records.extend(pickle.load(data))
    return records


def delete_spills(passthrough: Any, spills: list[SpillIndex], spill_dir: str) -> Any:
    """Deletes the spill files and their directory; returns `passthrough` (to order steps after it)."""
    paths = [path for path, _ in spills]
    if paths:
        FileSystems.delete(paths)
    if FileSystems.exists(spill_dir):
        FileSystems.delete([spill_dir])
    return passthrough


class SpillUntil(beam.PTransform):
    """PCollection[T] -> the same elements, re-read from spill files once `after` is complete.

    For records that must wait for a side input computed from all of them (a
    vocabulary, dedupe decisions): the step that applies the side input then
    streams the records from disk instead of from the runner's memory. Element
    order is not kept. `after` can be any PCollection; only its completion counts.
    """

    def __init__(self, spill_prefix: str, after):
        super().__init__()
        self.spill_prefix = spill_prefix
        self.after = after

    def expand(self, elements):
        spill_dir = new_spill_dir(self.spill_prefix)
        spills = (
            elements
            | "Key" >> beam.Map(lambda element: ("", element))
            | "Spill" >> beam.ParDo(SpillDoFn(spill_dir, 1, SPILL_RECORDS))
        )
        restored = (
            spills
            | "WaitFor" >> beam.Map(lambda spill, _: spill[0], beam.pvalue.AsIter(self.after))
            # One spill file per work item, spread over the workers.
            | "SpreadSpills" >> beam.Reshuffle()
            | "ReadSpill" >> beam.FlatMap(lambda path: (value for _, value in read_spill_file(path)))
        )
        # Delete the files once every element has been read back.
        _ = (
            restored
            | "CountRestored" >> beam.combiners.Count.Globally()
            | "DeleteSpills" >> beam.Map(delete_spills, beam.pvalue.AsList(spills), spill_dir)
        )
        return restored
