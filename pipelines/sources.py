"""Readers: raw files in any supported layout -> RawRecords (+ quarantine, + input list).

Formats (`--input_format`):

* ``aclimdb``: the Large Movie Review Dataset layout, ``ROOT/{train,test}/{pos,neg,unsup}/ID_RATING.txt``;
  split from the first folder, label from the second (``unsup`` = unlabeled), id and
  rating from the file name.
* ``csv``, ``jsonl``, ``parquet``: one record per row with named text / label / id /
  split columns (see `ColumnNames`); other columns travel along as strings in ``extra``.
* ``lines``: plain text, one document per line.

All I/O goes through Beam's FileSystems, so local paths and ``gs://`` work alike.
Reading is per file (a file is one unit of work); ids are deterministic
(``FILE:ROW`` where the input has no id column) so reruns give the same output.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import posixpath
import re
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipelines.common import INPUTS_TAG, QUARANTINE_TAG, UserError, quarantine
from schemas import names, reasons

FORMATS = ("aclimdb", "csv", "jsonl", "parquet", "lines")
_ACLIMDB_NAME = re.compile(r"^(?P<id>\d+)_(?P<rating>\d+)\.txt$")
_STAGE = "read"


@dataclasses.dataclass(frozen=True)
class ColumnNames:
    """Which columns of a tabular input hold what."""

    text: str = "text"
    label: str = "label"
    id: str = "id"
    split: str = "split"


def resolve_input_pattern(input_path: str, input_format: str) -> str:
    """The file pattern for an input path; raises UserError if it matches nothing."""
    if input_format not in FORMATS:
        raise UserError(f"unknown --input_format {input_format!r}; choose one of {', '.join(FORMATS)}")
    path = input_path.rstrip("/")
    if input_format == "aclimdb":
        pattern = f"{path}/*/*/*"
        if not FileSystems.match([pattern])[0].metadata_list:
            raise UserError(
                f"no aclImdb layout under {input_path}: expected files like "
                f"{path}/train/pos/0_9.txt (is the path right, and extracted?)"
            )
        return pattern
    is_glob = any(ch in path for ch in "*?[")
    if not is_glob and _is_directory(path):
        pattern = f"{path}/*"
    else:
        pattern = path
    if not FileSystems.match([pattern])[0].metadata_list:
        what = "the pattern" if is_glob else "the path"
        raise UserError(f"--input {input_path}: {what} matches no file")
    return pattern


def _is_directory(path: str) -> bool:
    if "://" in path:
        return bool(FileSystems.match([path + "/*"])[0].metadata_list)
    import os

    return os.path.isdir(path)


class _HashingReader(io.RawIOBase):
    """Wraps a binary file handle, hashing and counting every byte read through it."""

    def __init__(self, handle):
        self._handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._handle.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.digest.update(data)
        self.size += n
        return n


class ReadFileRecords(beam.DoFn):
    """FileMetadata -> RawRecords; tagged outputs: quarantine, inputs (path, sha256, bytes)."""

    def __init__(self, input_format: str, root: str, columns: ColumnNames):
        self.input_format = input_format
        self.root = root.rstrip("/")
        self.columns = columns
        self.files_read = Metrics.counter("read", "files")
        self.records_read = Metrics.counter("read", "records")
        self.unreadable = Metrics.counter("read", "unreadable")

    def process(self, metadata) -> Iterator[Any]:
        path = metadata.path
        source = path
        try:
            handle = FileSystems.open(path, compression_type=CompressionTypes.AUTO)
        except Exception as error:  # noqa: BLE001 -- any I/O failure is one quarantined input
            self.unreadable.inc()
            yield beam.pvalue.TaggedOutput(
                QUARANTINE_TAG,
                quarantine({"id": path, "source": source}, _STAGE, reasons.UNREADABLE_INPUT, repr(error)),
            )
            return
        reader = _HashingReader(handle)
        count = 0
        try:
            for record in self._records(path, reader):
                count += 1
                if "reason" in record:  # a row the parser rejected
                    yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, record)
                else:
                    yield record
        except Exception as error:  # noqa: BLE001 -- a file that breaks mid-way
            count += 1
            self.unreadable.inc()
            yield beam.pvalue.TaggedOutput(
                QUARANTINE_TAG,
                quarantine(
                    {"id": f"{path}:after_row_{count - 1}", "source": source},
                    _STAGE,
                    reasons.UNREADABLE_INPUT,
                    f"reading stopped: {error!r}",
                ),
            )
        finally:
            handle.close()
        self.files_read.inc()
        self.records_read.inc(count)
        yield beam.pvalue.TaggedOutput(INPUTS_TAG, (path, reader.digest.hexdigest(), reader.size))

    # ------------------------------------------------------------------ per format
    def _records(self, path: str, reader: _HashingReader) -> Iterator[dict[str, Any]]:
        if self.input_format == "aclimdb":
            yield self._aclimdb_record(path, reader.read())
        elif self.input_format == "lines":
            yield from self._line_records(path, reader)
        elif self.input_format == "csv":
            yield from self._csv_records(path, reader)
        elif self.input_format == "jsonl":
            yield from self._jsonl_records(path, reader)
        elif self.input_format == "parquet":
            yield from self._parquet_records(path, reader)
        else:
            raise ValueError(f"unknown input format {self.input_format!r}")

    def _aclimdb_record(self, path: str, data: bytes) -> dict[str, Any]:
        relative = path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path
        parts = relative.split("/")
        record: dict[str, Any] = {"id": relative, "source": path, "text": data, "extra": {}}
        if len(parts) != 3 or parts[0] not in (names.SPLIT_TRAIN, names.SPLIT_TEST):
            return quarantine(
                record, _STAGE, reasons.UNPARSEABLE_FILENAME, f"not SPLIT/LABEL/ID_RATING.txt: {relative}"
            )
        split, folder, filename = parts
        match = _ACLIMDB_NAME.match(filename)
        if not match:
            return quarantine(
                record, _STAGE, reasons.UNPARSEABLE_FILENAME, f"file name {filename!r} is not ID_RATING.txt"
            )
        record["id"] = f"{split}/{folder}/{match['id']}"
        record["extra"] = {"rating": match["rating"], "folder": folder}
        if folder == names.UNLABELED_FOLDER:
            record.update(split=names.SPLIT_UNSUP, label=None)
        else:
            # The folder name is the label; an unknown folder is caught by the label check.
            record.update(split=split, label=folder)
        return record

    def _line_records(self, path: str, reader) -> Iterator[dict[str, Any]]:
        name = posixpath.basename(path)
        for number, line in enumerate(io.BufferedReader(reader), start=1):
            text = line.rstrip(b"\r\n")
            yield {"id": f"{name}:{number}", "source": path, "split": None, "label": None, "text": text, "extra": {}}

    def _row_record(self, path: str, number: int, row: dict[str, Any]) -> dict[str, Any]:
        columns = self.columns
        name = posixpath.basename(path)
        raw_id = row.get(columns.id)
        record_id = f"{name}:{number}" if raw_id in (None, "") else str(raw_id)
        text = row.get(columns.text)
        label = row.get(columns.label)
        split = row.get(columns.split)
        used = {columns.text, columns.label, columns.id, columns.split}
        extra = {str(k): ("" if v is None else str(v)) for k, v in row.items() if k not in used and k is not None}
        if label is not None:
            extra[columns.label] = str(label)
        return {
            "id": record_id,
            "source": f"{path}:{number}",
            "split": None if split in (None, "") else str(split).strip().lower(),
            "label": None if label is None or str(label).strip() == "" else str(label),
            # The input has a label column: an empty label there is missing, not "unlabeled".
            "label_expected": columns.label in row,
            "text": text,
            "extra": extra,
        }

    def _csv_records(self, path: str, reader) -> Iterator[dict[str, Any]]:
        # Long texts are checked (text_too_long) later, not refused by the csv module's 128 KiB field limit.
        csv.field_size_limit(2**31 - 1)
        name = posixpath.basename(path)
        # surrogateescape keeps undecodable bytes so one bad row is quarantined, not the file.
        stream = io.TextIOWrapper(io.BufferedReader(reader), encoding="utf-8", errors="surrogateescape", newline="")
        rows = csv.reader(stream)
        header = next(rows, None)
        if header is None:
            return
        if self.columns.text not in header:
            yield quarantine(
                {"id": f"{name}:header", "source": path},
                _STAGE,
                reasons.MISSING_TEXT,
                f"no column {self.columns.text!r} in header {header[:20]}",
            )
            return
        first_line = rows.line_num + 1
        for number, values in enumerate(rows, start=2):  # row 1 is the header
            lines = f"lines {first_line}-{rows.line_num}" if rows.line_num > first_line else f"line {first_line}"
            if len(values) != len(header):
                hint = " (an unbalanced quote joins lines into one field)" if rows.line_num > first_line else ""
                yield quarantine(
                    {"id": f"{name}:{number}", "source": f"{path}:{first_line}", "text": ",".join(values)},
                    _STAGE,
                    reasons.MALFORMED_ROW,
                    f"expected {len(header)} columns, got {len(values)} on {lines}{hint}",
                )
            else:
                yield self._row_record(path, number, dict(zip(header, values, strict=True)))
            first_line = rows.line_num + 1

    def _jsonl_records(self, path: str, reader) -> Iterator[dict[str, Any]]:
        name = posixpath.basename(path)
        for number, line in enumerate(io.BufferedReader(reader), start=1):
            raw = line.decode("utf-8", errors="surrogateescape").strip()
            where = {"id": f"{name}:{number}", "source": f"{path}:{number}", "text": raw}
            if not raw:
                yield quarantine(where, _STAGE, reasons.EMPTY_TEXT, "empty line")
                continue
            try:
                row = json.loads(raw)
            except ValueError as error:
                yield quarantine(where, _STAGE, reasons.MALFORMED_ROW, f"not JSON: {error}")
                continue
            if not isinstance(row, dict):
                yield quarantine(where, _STAGE, reasons.MALFORMED_ROW, f"JSON {type(row).__name__}, not an object")
                continue
            yield self._row_record(path, number, row)

    def _parquet_records(self, path: str, reader) -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        # Parquet needs random access: the footer is at the end.
        parquet = pq.ParquetFile(io.BytesIO(reader.read()))
        number = 0
        for batch in parquet.iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                number += 1
                yield self._row_record(path, number, row)


def list_inputs(pattern: str) -> Iterator[Any]:
    """FileMetadata for every file matching `pattern`, and a QuarantineRecord for every
    match that is not a readable file (a directory, a broken symlink).

    Beam's FileSystems.match leaves such entries out without a word; on local disk
    they are listed here so nothing is skipped silently. Symlinks to files are followed.
    """
    if "://" in pattern:
        yield from FileSystems.match([pattern])[0].metadata_list
        return
    import glob
    import os

    from apache_beam.io.filesystem import FileMetadata

    for path in sorted(glob.glob(pattern)):
        where = {"id": path, "source": path}
        if os.path.isdir(path):
            yield quarantine(where, _STAGE, reasons.UNREADABLE_INPUT, "a directory where a file was expected")
        elif os.path.islink(path) and not os.path.exists(path):
            yield quarantine(where, _STAGE, reasons.UNREADABLE_INPUT, f"broken symlink to {os.readlink(path)}")
        elif not os.path.isfile(path):
            yield quarantine(where, _STAGE, reasons.UNREADABLE_INPUT, "not a regular file")
        else:
            yield FileMetadata(path, os.path.getsize(path))


def _route_listing(entry):
    if isinstance(entry, dict):
        yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, entry)
    else:
        yield entry


class ReadRawRecords(beam.PTransform):
    """PBegin -> {"records": RawRecord, "quarantine": QuarantineRecord, "inputs": (path, sha256, bytes)}."""

    def __init__(self, input_path: str, input_format: str, columns: ColumnNames = ColumnNames()):
        super().__init__()
        self.pattern = resolve_input_pattern(input_path, input_format)
        self.input_format = input_format
        self.root = input_path.rstrip("/")
        self.columns = columns

    def expand(self, pbegin):
        listing = (
            pbegin
            | "MatchFiles" >> beam.Create([self.pattern])
            | "Expand" >> beam.FlatMap(list_inputs)
            | "RouteNonFiles" >> beam.FlatMap(_route_listing).with_outputs(QUARANTINE_TAG, main="files")
        )
        outputs = (
            listing.files
            # Reshuffle so files spread over workers instead of staying in one bundle.
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadFiles"
            >> beam.ParDo(ReadFileRecords(self.input_format, self.root, self.columns)).with_outputs(
                QUARANTINE_TAG, INPUTS_TAG, main="records"
            )
        )
        quarantined = (listing[QUARANTINE_TAG], outputs[QUARANTINE_TAG]) | "ReadQuarantine" >> beam.Flatten()
        return {"records": outputs.records, QUARANTINE_TAG: quarantined, INPUTS_TAG: outputs[INPUTS_TAG]}
