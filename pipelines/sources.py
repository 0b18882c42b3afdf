"""Readers: raw files in any supported layout -> RawRecords (+ quarantine, + input list).

Formats (`--input_format`):

* ``aclimdb``: the Large Movie Review Dataset layout, ``ROOT/{train,test}/{pos,neg,unsup}/ID_RATING.txt``;
  split from the first folder, label from the second (``unsup`` = unlabeled), id and
  rating from the file name.
* ``csv``, ``jsonl``, ``parquet``: one record per row with named text / label / id /
  split columns (see `ColumnNames`); other columns travel along as strings in ``extra``.
  jsonl lines end like ``lines`` lines (a raw CR cannot occur inside a JSON string); a
  parquet binary text column is passed on as bytes.
* ``lines``: plain text, one document per line; ``\\n``, ``\\r\\n`` and a lone ``\\r`` all end a line
  (old Mac files), so ``a\\r\\rb`` is three lines, the middle one empty. Id ``FILE:LINE``.
* ``parallel``: sentence-aligned text for translation, one sentence per line, plain or
  compressed: ``DIR/STEM.SRC[.gz]`` beside ``DIR/STEM.TGT[.gz]`` (the Multi30k layout:
  ``train.de.gz`` + ``train.en.gz``), languages from ``--source_language`` / ``--target_language``.
  Line N of one file is the translation of line N of the other; the split comes from the stem
  (``train*``, ``val*``/``dev*``, ``test*``; anything else is split by hash); id ``STEM:LINE``.
  A record's ``text`` is the source line, ``target`` the target line, both raw bytes.
  Files whose line counts differ are refused before the run (`check_parallel_files`).
* ``text``: plain text, one document per file (a single corpus such as tiny Shakespeare, or a
  folder of .txt files); id = the file's path relative to ``--input`` (its name when ``--input``
  is a file, the part after the last folder without wildcards when it is a glob).

Encodings: `encoding` (the user's ``--encoding``) is how csv and jsonl files are decoded;
``lines``, ``text`` and ``aclimdb`` records carry the raw bytes and the checker
(`pipelines.transforms.check_raw_record`) decodes them with ``--encoding`` /
``--fallback_encoding``. A csv/jsonl text field with bytes that are not valid in `encoding`
is passed on as those original bytes too, so one bad row is decoded by the fallback or
quarantined (``undecodable_text``), never the whole file; undecodable bytes in other fields
(id, label, extra columns) become U+FFFD. No element leaving the reader holds a lone
surrogate (Beam's coders cannot encode one). A UTF-8 byte order mark at the start of a file
is dropped when `encoding` is UTF-8.

All I/O goes through Beam's FileSystems, so local paths and ``gs://`` work alike.
Reading is per file (a file is one unit of work); ids are deterministic
(``FILE:ROW`` where the input has no id column) so reruns give the same output.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib
import io
import json
import posixpath
import re
import zlib
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipelines.common import INPUTS_TAG, QUARANTINE_TAG, UserError, quarantine
from schemas import names, reasons

FORMATS = ("aclimdb", "csv", "jsonl", "parquet", "lines", "text", "parallel")
# Compression suffixes FileSystems opens transparently (CompressionTypes.AUTO).
_COMPRESSED = (".gz", ".bz2", ".deflate", ".zst", ".zstd", ".lzma", ".xz")
_ACLIMDB_NAME = re.compile(r"^(?P<id>\d+)_(?P<rating>\d+)\.txt$")
_STAGE = "read"
_SURROGATE = re.compile("[\ud800-\udfff]")
# Surrogates that surrogateescape never produces: in a decoded line they come from a JSON \\uXXXX escape.
_NON_ESCAPE_SURROGATE = re.compile("[\ud800-\udc7f\udd00-\udfff]")
_LINE_END = re.compile(b"\r\n|\r|\n")
_UTF8_BOM = codecs.BOM_UTF8
_CHUNK_BYTES = 1 << 20
FILES_PER_CHUNK = 200  # files per element between listing and reading (a Reshuffle element each)


@dataclasses.dataclass(frozen=True)
class ColumnNames:
    """Which columns of a tabular input hold what."""

    text: str = "text"
    label: str = "label"
    id: str = "id"
    split: str = "split"
    target: str | None = None  # a second text (translation's target side), carried as "target"


@dataclasses.dataclass(frozen=True)
class ParallelFile:
    """One side of an aligned pair: ``DIR/STEM.LANG[.gz]``."""

    path: str
    stem: str  # e.g. "train", "test_2016_flickr"
    compression: str  # the suffix after the language, "" or ".gz", ...

    @classmethod
    def parse(cls, path: str, language: str) -> ParallelFile | None:
        name = posixpath.basename(path)
        compression = next((c for c in _COMPRESSED if name.endswith(c)), "")
        bare = name[: len(name) - len(compression)]
        if not bare.endswith("." + language) or len(bare) == len(language) + 1:
            return None
        return cls(path, bare[: -len(language) - 1], compression)

    def sibling(self, language: str) -> str:
        return posixpath.join(posixpath.dirname(self.path), f"{self.stem}.{language}{self.compression}")

    @property
    def split(self) -> str | None:
        stem = self.stem.lower()
        if stem.startswith(names.SPLIT_TRAIN):
            return names.SPLIT_TRAIN
        if stem.startswith(("val", "dev")):
            return names.SPLIT_VALIDATION
        if stem.startswith(names.SPLIT_TEST):
            return names.SPLIT_TEST
        return None


AUTO = "auto"  # --encoding auto: detect each file's encoding
_DETECT_BYTES = 1 << 20  # sample read for detection
# Single-byte code pages the detector cannot tell apart on Western text (no byte pattern separates them);
# of those tied for the best score, the first in this list wins: cp1252 is what Windows tools write.
_PREFERRED_TIES = ("cp1252", "latin_1", "iso8859_15", "cp1250", "cp1251")
_TIE_MARGIN = 0.05


def check_encoding(encoding: str) -> str:
    """The codec's canonical name ("auto" stays "auto"); raises UserError for an unknown one."""
    if encoding == AUTO:
        return AUTO
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UserError(f"--encoding {encoding!r} is not a known codec") from None


def detect_encoding(sample: bytes) -> tuple[str, float]:
    """(codec name, confidence in [0, 1]) of a file from its first bytes.

    A byte order mark decides; then bytes that are valid UTF-8 are UTF-8 (ASCII included: a
    multi-byte character cut at the end of the sample is allowed); then charset-normalizer,
    whose confidence here is 1 - its "chaos" score, and which cannot tell single-byte Western
    code pages apart on short text, so ties go to `_PREFERRED_TIES` (cp1252 first).
    """
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32")):
        if sample.startswith(bom):
            return codecs.lookup(name).name, 1.0
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", 1.0
    # UTF-16 without a BOM is valid UTF-8 full of NULs: mostly-NUL even (odd) bytes mean big (little) endian.
    if sample.count(0) > len(sample) // 4:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if max(even, odd) > 0.3 * (len(sample) / 2) and min(even, odd) < 0.05 * (len(sample) / 2):
            return ("utf-16-be" if even > odd else "utf-16-le"), 0.9
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8", 1.0
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(sample))
    if not matches:
        return "utf-8", 0.0  # nothing fits: rows that do not decode are quarantined as undecodable_text
    best_chaos = min(m.chaos for m in matches)
    # "Tied": within _TIE_MARGIN of the best chaos; on a short sample a few punctuation bytes decide otherwise.
    tied = [codecs.lookup(m.encoding).name for m in matches if m.chaos <= best_chaos + _TIE_MARGIN]
    preferred = [codecs.lookup(name).name for name in _PREFERRED_TIES]
    choice = next((name for name in preferred if name in tied), tied[0])
    return choice, round(1.0 - best_chaos, 3)


def resolve_input_pattern(input_path: str, input_format: str) -> str:
    """The file pattern for an input path; raises UserError if it matches nothing."""
    if input_format not in FORMATS:
        raise UserError(f"unknown --input_format {input_format!r}; choose one of {', '.join(FORMATS)}")
    path = input_path.rstrip("/")
    if input_format == "aclimdb":
        pattern = f"{path}/*/*/*"
        if not FileSystems.match([pattern], limits=[1])[0].metadata_list:
            raise UserError(
                f"no aclImdb layout under {input_path}: expected files like "
                f"{path}/train/pos/0_9.txt (is the path right, and extracted?)"
            )
        return pattern
    if input_format == "parallel":
        if not _is_directory(path):
            raise UserError(f"--input {input_path}: --input_format parallel takes a folder of STEM.LANG[.gz] files")
        return f"{path}/*"
    is_glob = any(ch in path for ch in "*?[")
    if not is_glob and _is_directory(path):
        pattern = f"{path}/*"
    else:
        pattern = path
    if not FileSystems.match([pattern], limits=[1])[0].metadata_list:
        what = "the pattern" if is_glob else "the path"
        raise UserError(f"--input {input_path}: {what} matches no file")
    return pattern


def _is_directory(path: str) -> bool:
    if "://" in path:
        return bool(FileSystems.match([path + "/*"])[0].metadata_list)
    import os

    return os.path.isdir(path)


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def _replace_surrogates(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text) if _has_surrogate(text) else text


def _scrub(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (keys and nested values too) made U+FFFD.

    The last guard before Beam's coders, which fail on a lone surrogate and crash the
    pipeline; the text field is turned into bytes earlier (see `_text_value`), so what
    this replaces is only ids, labels, paths, extra columns and quarantine details.
    """
    if isinstance(value, str):
        return _replace_surrogates(value)
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def _as_str(value: Any, encoding: str) -> str:
    """A non-text field as a clean string: undecodable bytes become U+FFFD."""
    if isinstance(value, bytes):  # a parquet binary column
        return value.decode(encoding, errors="replace")
    return _replace_surrogates(value if isinstance(value, str) else str(value))


def _ascii_compatible(encoding: str) -> bool:
    """Whether line ends are the ASCII bytes CR/LF in `encoding` (not so in UTF-16/32 or EBCDIC)."""
    return "\r\n".encode(encoding) == b"\r\n"


def _split_byte_lines(reader) -> Iterator[bytes]:
    """The lines of a binary stream without their ends; LF, CRLF and a lone CR each end a line.

    A lone CR is a line end too (classic Mac files would otherwise be one huge line);
    the price is that a stray CR inside a line splits it. A final empty line is dropped.
    """
    pending: list[bytes] = []  # pieces of the line not yet ended
    held_cr = False
    while chunk := reader.read(_CHUNK_BYTES):
        if held_cr:
            chunk = b"\r" + chunk
        # A CR at the end of a chunk may be half of a CRLF: decide with the next chunk.
        held_cr = chunk.endswith(b"\r")
        if held_cr:
            chunk = chunk[:-1]
        pieces = _LINE_END.split(chunk)
        pending.append(pieces[0])
        if len(pieces) > 1:
            yield b"".join(pending)
            yield from pieces[1:-1]
            pending = [pieces[-1]]
    if held_cr:
        yield b"".join(pending)
        pending = []
    if last := b"".join(pending):
        yield last


def _strip_utf8_bom(data: bytes, encoding: str) -> bytes:
    # Decoded as plain utf-8 by the checker, a BOM would stay as U+FEFF at the start of the text.
    is_utf8 = encoding in ("utf-8", "utf-8-sig")
    return data[len(_UTF8_BOM) :] if is_utf8 and data.startswith(_UTF8_BOM) else data


def _relative_id(path: str, root: str) -> str:
    """`path` relative to the --input root; its name when --input is the file itself.

    For a glob the root is the folders before the first wildcard, so ``DIR/*/*.txt``
    gives ids like ``SUB/NAME.txt`` that stay unique across sub-folders.
    """
    if any(ch in root for ch in "*?["):
        parts = root.split("/")
        first_wild = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
        root = "/".join(parts[:first_wild])
    if root and path.startswith(root + "/"):
        return path[len(root) + 1 :]
    return posixpath.basename(path)


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

    def readall(self) -> bytes:
        # One read of the rest of the file (RawIOBase's default loops over 8 KiB readinto calls).
        data = self._handle.read()
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Hash the rest of the file, so inputs.tsv is right when a reader stops early."""
        while data := self._handle.read(_CHUNK_BYTES):
            self.digest.update(data)
            self.size += len(data)


class ReadFileRecords(beam.DoFn):
    """FileMetadata -> RawRecords; tagged outputs: quarantine, inputs (path, sha256, bytes).

    `encoding` decodes csv and jsonl files (see the module docstring for the other formats).
    """

    def __init__(
        self,
        input_format: str,
        root: str,
        columns: ColumnNames,
        *,
        encoding: str = "utf-8",
        languages: tuple[str, str] | None = None,
    ):
        self.input_format = input_format
        self.languages = languages  # (source, target) of the parallel format
        self.root = root.rstrip("/")
        self.columns = columns
        self.auto = check_encoding(encoding) == AUTO
        self._use_encoding("utf-8" if self.auto else check_encoding(encoding))
        self.files_read = Metrics.counter("read", "files")
        self.records_read = Metrics.counter("read", "records")
        self.unreadable = Metrics.counter("read", "unreadable")

    def _use_encoding(self, encoding: str) -> None:
        """Decode what follows (this file) with `encoding`."""
        self.encoding = encoding
        # utf-8-sig drops a BOM at the start of the stream only; it must not be used to encode
        # (it would put one before every text), so text goes back to bytes as plain utf-8.
        self.is_utf8 = self.encoding in ("utf-8", "utf-8-sig")
        self.stream_encoding = "utf-8-sig" if self.is_utf8 else self.encoding
        self.bytes_encoding = "utf-8" if self.is_utf8 else self.encoding

    def _detect(self, path: str) -> tuple[str, float]:
        """--encoding auto: (encoding, confidence) of the file at `path`, from its first MiB."""
        with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as handle:
            sample = handle.read(_DETECT_BYTES)
        encoding, confidence = detect_encoding(sample)
        return ("utf-8" if encoding == "utf-8-sig" else encoding), confidence

    def _input_entry(self, path: str, reader, detected: tuple[str, float] | None) -> tuple:
        """What inputs.tsv lists for a file: (path, sha256, bytes), plus (encoding, confidence) under auto."""
        entry = (path, reader.digest.hexdigest(), reader.size)
        return _scrub(entry + detected if detected else entry)

    def process(self, metadata) -> Iterator[Any]:
        if self.input_format == "parallel":
            yield from self._process_pair(metadata.path)
            return
        path = metadata.path
        source = path
        detected = None
        if self.auto:
            try:
                detected = self._detect(path)
            except Exception:  # noqa: BLE001 -- the open below reports an unreadable file
                detected = ("utf-8", 0.0)
            self._use_encoding(detected[0])
        try:
            handle = open_input(path)
        except Exception as error:  # noqa: BLE001 -- any I/O failure is one quarantined input
            self.unreadable.inc()
            yield beam.pvalue.TaggedOutput(
                QUARANTINE_TAG,
                _scrub(quarantine({"id": path, "source": source}, _STAGE, reasons.UNREADABLE_INPUT, repr(error))),
            )
            return
        reader = _HashingReader(handle)
        count = 0
        try:
            for record in self._records(path, reader):
                count += 1
                # _scrub: a path, id or label with undecodable bytes must not crash the coder.
                if "reason" in record:  # a row the parser rejected
                    yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, _scrub(record))
                else:
                    if detected:
                        record["encoding"] = self.encoding  # the checker decodes this file's bytes with it
                    yield _scrub(record)
            reader.drain()
        except Exception as error:  # noqa: BLE001 -- a file that breaks mid-way
            count += 1
            self.unreadable.inc()
            yield beam.pvalue.TaggedOutput(
                QUARANTINE_TAG,
                _scrub(
                    quarantine(
                        {"id": f"{path}:after_row_{count - 1}", "source": source},
                        _STAGE,
                        reasons.UNREADABLE_INPUT,
                        f"reading stopped: {error!r}",
                    )
                ),
            )
        finally:
            handle.close()
        self.files_read.inc()
        self.records_read.inc(count)
        yield beam.pvalue.TaggedOutput(INPUTS_TAG, self._input_entry(path, reader, detected))

    def _process_pair(self, path: str) -> Iterator[Any]:
        """A source-language file and its target sibling -> one RawRecord per line pair."""
        source_language, target_language = self.languages
        side = ParallelFile.parse(path, source_language)
        if side is None:
            return  # another language's file, or not a STEM.LANG file: not an input of this pair
        target_path = side.sibling(target_language)
        handles = []
        detected = [None, None]
        try:
            if self.auto:
                detected = [self._detect(file_path) for file_path in (path, target_path)]
            for file_path in (path, target_path):
                handles.append(FileSystems.open(file_path, compression_type=CompressionTypes.AUTO))
        except Exception as error:  # noqa: BLE001 -- any I/O failure is one quarantined input
            for handle in handles:
                handle.close()
            self.unreadable.inc()
            yield beam.pvalue.TaggedOutput(
                QUARANTINE_TAG,
                _scrub(quarantine({"id": path, "source": path}, _STAGE, reasons.UNREADABLE_INPUT, repr(error))),
            )
            return
        readers = [_HashingReader(handle) for handle in handles]
        count = 0
        try:
            encodings = [found[0] if found else self.encoding for found in detected]
            source_lines, target_lines = (
                self._lines(reader, encoding) for reader, encoding in zip(readers, encodings, strict=True)
            )
            for number, (source_text, target_text) in enumerate(zip(source_lines, target_lines, strict=True), 1):
                count += 1
                if number == 1:
                    source_text, target_text = (
                        _strip_utf8_bom(text, encoding)
                        for text, encoding in zip((source_text, target_text), encodings, strict=True)
                    )
                extra_keys = {"encoding": encodings[0], "target_encoding": encodings[1]} if self.auto else {}
                yield {
                    **extra_keys,
                    "id": f"{side.stem}:{number}",
                    "source": f"{path}:{number}",
                    "split": side.split,
                    "label": None,
                    "text": source_text,
                    "target": target_text,
                    "extra": {},
                }
            for reader in readers:
                reader.drain()
        except Exception as error:  # noqa: BLE001 -- a file that breaks mid-way, or line counts that changed
            count += 1
            self.unreadable.inc()
            yield beam.pvalue.TaggedOutput(
                QUARANTINE_TAG,
                _scrub(
                    quarantine(
                        {"id": f"{side.stem}:after_line_{count - 1}", "source": path},
                        _STAGE,
                        reasons.UNREADABLE_INPUT,
                        f"reading stopped: {error!r}",
                    )
                ),
            )
        finally:
            for handle in handles:
                handle.close()
        self.files_read.inc(2)
        self.records_read.inc(count)
        for file_path, reader, found in zip((path, target_path), readers, detected, strict=True):
            yield beam.pvalue.TaggedOutput(INPUTS_TAG, self._input_entry(file_path, reader, found))

    def _lines(self, reader, encoding: str | None = None) -> Iterator[bytes]:
        """The lines of a file as bytes in `encoding` (default: this file's), without their ends (see
        `_split_byte_lines`)."""
        encoding = encoding or self.encoding
        if _ascii_compatible(encoding):
            # Split the bytes, so each line's bytes reach the checker as stored (it decodes them).
            return _split_byte_lines(reader)
        # UTF-16/32: a 0x0A byte is not a line end there, so decode to split and encode each
        # line back for the checker (a bad byte sequence stops the file: surrogateescape
        # cannot carry it in these codecs).
        stream = io.TextIOWrapper(io.BufferedReader(reader), encoding=encoding, newline=None)
        return (line.rstrip("\n").encode(encoding) for line in stream)

    # ------------------------------------------------------------------ per format
    def _records(self, path: str, reader: _HashingReader) -> Iterator[dict[str, Any]]:
        if self.input_format == "aclimdb":
            yield self._aclimdb_record(path, reader.read())
        elif self.input_format == "lines":
            yield from self._line_records(path, reader)
        elif self.input_format == "text":
            yield self._text_record(path, reader.read())
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
        for number, text in enumerate(self._lines(reader), start=1):
            if number == 1:
                text = self._strip_bom(text)
            yield {"id": f"{name}:{number}", "source": path, "split": None, "label": None, "text": text, "extra": {}}

    def _text_record(self, path: str, data: bytes) -> dict[str, Any]:
        return {
            "id": _relative_id(path, self.root),
            "source": path,
            "split": None,
            "label": None,
            "text": self._strip_bom(data),
            "extra": {},
        }

    def _strip_bom(self, data: bytes) -> bytes:
        return _strip_utf8_bom(data, self.encoding)

    def _text_value(self, text: Any, byte_escapes: bool) -> tuple[Any, str | None]:
        """(text for the RawRecord, None) or (None, why it cannot be passed on).

        `byte_escapes`: surrogates U+DC80-U+DCFF in `text` are undecodable bytes kept by
        surrogateescape (csv, or a jsonl line that held such bytes); then the text is
        passed on as the original bytes so the checker decodes it with --encoding /
        --fallback_encoding or quarantines it as undecodable_text. Other lone surrogates
        come from JSON \\uXXXX escapes (half an emoji cut off): valid JSON, invalid
        Unicode, made U+FFFD.
        """
        if not isinstance(text, str) or not _has_surrogate(text):
            return text, None
        if not byte_escapes:
            return _SURROGATE.sub("\ufffd", text), None
        text = _NON_ESCAPE_SURROGATE.sub("\ufffd", text)
        try:
            return text.encode(self.bytes_encoding, errors="surrogateescape"), None
        except UnicodeEncodeError as error:
            # A jsonl line mixing bytes invalid in the encoding with \\u escapes of characters
            # the encoding lacks: no single byte string stands for it.
            return None, f"bytes not valid {self.encoding} next to characters it cannot encode: {error.reason}"

    def _row_record(self, path: str, number: int, row: dict[str, Any], byte_escapes: bool) -> dict[str, Any]:
        columns = self.columns
        encoding = self.encoding
        name = posixpath.basename(path)
        raw_id = row.get(columns.id)
        record_id = f"{name}:{number}" if raw_id in (None, "", b"") else _as_str(raw_id, encoding)
        label = row.get(columns.label)
        label = None if label is None else _as_str(label, encoding)
        split = row.get(columns.split)
        used = {columns.text, columns.label, columns.id, columns.split, columns.target}
        extra = {
            _as_str(k, encoding): ("" if v is None else _as_str(v, encoding))
            for k, v in row.items()
            if k not in used and k is not None
        }
        if label is not None:
            extra[columns.label] = label
        raw_text = row.get(columns.text)
        text, failure = self._text_value(raw_text, byte_escapes)
        record = {
            "id": record_id,
            "source": f"{path}:{number}",
            "split": None if split in (None, "", b"") else _as_str(split, encoding).strip().lower(),
            "label": None if label is None or label.strip() == "" else label,
            # The input has a label column: an empty label there is missing, not "unlabeled".
            "label_expected": columns.label in row,
            "text": text,
            "extra": extra,
        }
        if columns.target is not None:
            raw_target = row.get(columns.target)
            record["target"], target_failure = self._text_value(raw_target, byte_escapes)
            if target_failure and not failure:
                return quarantine(
                    {**record, "text": raw_target}, _STAGE, reasons.UNDECODABLE_TEXT, f"target: {target_failure}"
                )
        if failure:
            # The decoded text for the excerpt: quarantine() makes its surrogates printable.
            return quarantine({**record, "text": raw_text}, _STAGE, reasons.UNDECODABLE_TEXT, failure)
        return record

    def _csv_records(self, path: str, reader) -> Iterator[dict[str, Any]]:
        # Long texts are checked (text_too_long) later, not refused by the csv module's 128 KiB field limit.
        csv.field_size_limit(2**31 - 1)
        name = posixpath.basename(path)
        # surrogateescape keeps undecodable bytes so one bad row is quarantined, not the file
        # (_text_value turns them back into the original bytes; other fields get U+FFFD).
        stream = io.TextIOWrapper(
            io.BufferedReader(reader), encoding=self.stream_encoding, errors="surrogateescape", newline=""
        )
        rows = csv.reader(stream)
        header = next(rows, None)
        if header is None:
            return
        # utf-8-sig drops a UTF-8 BOM; this one is a BOM that an explicit utf-16-le/be leaves.
        header = [_replace_surrogates(column) for column in header]
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
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
                yield self._row_record(path, number, dict(zip(header, values, strict=True)), byte_escapes=True)
            first_line = rows.line_num + 1

    def _jsonl_records(self, path: str, reader) -> Iterator[dict[str, Any]]:
        name = posixpath.basename(path)
        # Decoding the stream (not each byte line) keeps UTF-16 lines whole; newline=None makes
        # CRLF and a lone CR line ends too. surrogateescape: as for csv.
        stream = io.TextIOWrapper(
            io.BufferedReader(reader), encoding=self.stream_encoding, errors="surrogateescape", newline=None
        )
        for number, line in enumerate(stream, start=1):
            raw = line.strip()
            if number == 1 and raw.startswith("\ufeff"):  # a BOM the codec left (see _csv_records)
                raw = raw[1:].strip()
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
            # Surrogates from undecodable bytes are only possible if the line had some.
            yield self._row_record(path, number, row, byte_escapes=_has_surrogate(raw))

    def _parquet_records(self, path: str, reader) -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        # Parquet needs random access: the footer is at the end.
        parquet = pq.ParquetFile(io.BytesIO(reader.read()))
        number = 0
        for batch in parquet.iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                number += 1
                # Arrow strings are valid UTF-8; binary columns arrive as bytes.
                yield self._row_record(path, number, row, byte_escapes=False)


def open_input(path: str):
    """A binary read handle on an input file, decompressed by its suffix (CompressionTypes.AUTO).

    A plain local file is opened directly: FileSystems.open resolves the scheme and wraps the handle
    on every call, ~40 µs a file, which is a third of reading a 100k-file corpus.
    """
    if "://" not in path and not path.lower().endswith(_COMPRESSED):
        return open(path, "rb")  # noqa: SIM115 -- the caller closes it
    return FileSystems.open(path, compression_type=CompressionTypes.AUTO)


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
    import stat

    from apache_beam.io.filesystem import FileMetadata

    for path in sorted(glob.glob(pattern)):
        where = {"id": path, "source": path}
        try:
            mode_size = os.stat(path)  # one stat per path (follows symlinks): 100k files list in ~1 s
        except OSError as error:
            if os.path.islink(path):
                yield quarantine(where, _STAGE, reasons.UNREADABLE_INPUT, f"broken symlink to {os.readlink(path)}")
            else:
                yield quarantine(where, _STAGE, reasons.UNREADABLE_INPUT, f"cannot stat: {error}")
            continue
        if stat.S_ISDIR(mode_size.st_mode):
            yield quarantine(where, _STAGE, reasons.UNREADABLE_INPUT, "a directory where a file was expected")
        elif not stat.S_ISREG(mode_size.st_mode):
            yield quarantine(where, _STAGE, reasons.UNREADABLE_INPUT, "not a regular file")
        else:
            yield FileMetadata(path, mode_size.st_size)


def list_input_chunks(pattern: str, files_per_chunk: int = FILES_PER_CHUNK) -> Iterator[Any]:
    """`list_inputs` with the files in chunks of up to `files_per_chunk` (quarantine records one by one).

    The reading step spreads chunks, not single files, over the workers: one Reshuffle element per
    chunk instead of per file. A chunk is ``[[path, bytes], ...]`` as zlib-compressed JSON
    (`files_of_chunk` reads it back): the local runner holds what a Reshuffle moves, in a few
    copies. For aclImdb's 100k files that is 0.3 MB compressed, 6 MB as JSON strings, ~50 MB as
    lists of FileMetadata.
    """
    chunk: list = []
    for entry in list_inputs(pattern):
        if isinstance(entry, dict):
            yield entry
            continue
        chunk.append([entry.path, entry.size_in_bytes])
        if len(chunk) == files_per_chunk:
            yield _pack_chunk(chunk)
            chunk = []
    if chunk:
        yield _pack_chunk(chunk)


def _pack_chunk(chunk: list) -> bytes:
    # Level 1: the paths share long prefixes, so even the fastest level shrinks a chunk ~20x (~0.2 ms).
    # json.dumps escapes every non-ASCII character (lone surrogates of undecodable names too): ASCII.
    return zlib.compress(json.dumps(chunk).encode("ascii"), 1)


def files_of_chunk(chunk: bytes) -> Iterator[Any]:
    """A chunk of `list_input_chunks` -> its FileMetadata, in order."""
    from apache_beam.io.filesystem import FileMetadata

    for path, size in json.loads(zlib.decompress(chunk)):
        yield FileMetadata(path, size)


def _route_listing(entry):
    if isinstance(entry, dict):
        yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, _scrub(entry))  # a file name with undecodable bytes
    else:
        yield entry


class ReadRawRecords(beam.PTransform):
    """PBegin -> {"records": RawRecord, "quarantine": QuarantineRecord, "inputs": (path, sha256, bytes)}.

    `encoding`: the user's --encoding, used to decode csv and jsonl files; pass the same
    value to the checker (CheckRows / check_raw_record), which decodes the bytes records.
    """

    def __init__(
        self,
        input_path: str,
        input_format: str,
        columns: ColumnNames = ColumnNames(),
        *,
        encoding: str = "utf-8",
        languages: tuple[str, str] | None = None,
    ):
        super().__init__()
        if input_format == "parallel" and languages is None:
            raise ValueError("the parallel format needs (source, target) languages")
        self.languages = languages
        self.pattern = resolve_input_pattern(input_path, input_format)
        self.input_format = input_format
        self.root = input_path.rstrip("/")
        self.columns = columns
        self.encoding = check_encoding(encoding)

    def expand(self, pbegin):
        listing = (
            pbegin
            | "MatchFiles" >> beam.Create([self.pattern])
            | "Expand" >> beam.FlatMap(list_input_chunks)
            | "RouteNonFiles" >> beam.FlatMap(_route_listing).with_outputs(QUARANTINE_TAG, main="files")
        )
        outputs = (
            listing.files
            # Reshuffle so chunks of files spread over workers instead of staying in one bundle.
            | "SpreadFiles" >> beam.Reshuffle()
            | "OneFileEach" >> beam.FlatMap(files_of_chunk)
            | "ReadFiles"
            >> beam.ParDo(
                ReadFileRecords(
                    self.input_format, self.root, self.columns, encoding=self.encoding, languages=self.languages
                )
            ).with_outputs(QUARANTINE_TAG, INPUTS_TAG, main="records")
        )
        quarantined = (listing[QUARANTINE_TAG], outputs[QUARANTINE_TAG]) | "ReadQuarantine" >> beam.Flatten()
        return {"records": outputs.records, QUARANTINE_TAG: quarantined, INPUTS_TAG: outputs[INPUTS_TAG]}


def check_parallel_files(input_path: str, source_language: str, target_language: str, encoding: str) -> list[str]:
    """The source-side files of a parallel folder, after checking each has its target file with as many lines.

    Raises UserError (one line, naming both files and both counts) for a missing sibling or
    a line-count mismatch: misaligned files would pair every sentence with the wrong one.
    """
    pattern = resolve_input_pattern(input_path, "parallel")
    paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    sides = [side for side in (ParallelFile.parse(p, source_language) for p in paths) if side]
    if not sides:
        raise UserError(f"--input {input_path}: no STEM.{source_language}[.gz] files (--source_language)")
    counter = ReadFileRecords("lines", input_path, ColumnNames(), encoding=encoding)
    for side in sides:
        target = side.sibling(target_language)
        if not FileSystems.exists(target):
            raise UserError(f"{side.path} has no target file {target} (--target_language {target_language})")
        counts = []
        for path in (side.path, target):
            with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as handle:
                counts.append(sum(1 for _ in counter._lines(_HashingReader(handle))))
        if counts[0] != counts[1]:
            raise UserError(
                f"{side.path} has {counts[0]} lines but {target} has {counts[1]}: parallel files must align line by line"
            )
    return [side.path for side in sides]
