"""Composite PTransforms shared by the ingest and scoring pipelines.

Each transform's docstring states its input and output element shapes (see
`pipelines.common` for RawRecord / TextRecord / QuarantineRecord). Rejected
records go to a tagged ``quarantine`` output with a reason and are counted with
Beam Metrics; nothing is filtered away silently.
"""

from __future__ import annotations

import codecs
import collections
import logging
import pickle
import re
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines import common, spill
from pipelines.common import QUARANTINE_TAG, quarantine, stable_fraction, text_fingerprint
from schemas import names, reasons
from textprep import vocabulary
from textprep.spec import TextSpec, as_spec

# textprep.preprocessing (TensorFlow ops) is imported inside the DoFns that run it: the
# launcher only builds the graph, and need not spend 10 CPU-seconds importing TensorFlow.
from textprep.vocabulary import top_k_vocabulary  # noqa: F401 -- re-exported for the bench's plain loop

LOGGER = logging.getLogger("lstm_pipeline")

DEFAULT_MAX_CHARS = 100_000  # raw characters; the longest IMDB review has ~14k
# Batches for the TensorFlow text ops: big enough to amortise op dispatch,
# small enough to keep a worker's memory flat. Fixed-size (a bundle's last batch is smaller):
# BatchElements' adaptive sizing starts at a few dozen texts and fits a regression of batch
# times after every batch (~0.8 s of the workers' py-spy samples on aclImdb) to end at this size anyway.
MAX_BATCH = 512


def resolve_label(raw_label: Any) -> int | None:
    """Label id for a raw label spelling (None if not recognised)."""
    if raw_label is None:
        return None
    if isinstance(raw_label, bool):
        return None
    if isinstance(raw_label, int | float) and float(raw_label).is_integer():
        raw_label = str(int(raw_label))
    return names.LABEL_ALIASES.get(str(raw_label).strip().lower())


# Control characters that are not whitespace, and invisible format characters
# (zero-width, bidi controls, BOM): cleaning removes them; counted as repairs.
_CONTROL_OR_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_BINARY_BYTES = re.compile(b"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
BINARY_CONTROL_SHARE = 0.10  # share of control bytes above which a NUL-containing payload is binary


def decode_text(data: bytes, encoding: str, fallback_encoding: str | None):
    """(text, repairs, None) or (None, [], (reason, detail)) for raw bytes."""
    # In UTF-16/32 NUL bytes are half the text: the byte heuristic applies to byte-oriented encodings only.
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    if (
        not wide
        and b"\x00" in data
        and len(_BINARY_BYTES.findall(data[:65536])) > BINARY_CONTROL_SHARE * min(len(data), 65536)
    ):
        return None, [], (reasons.BINARY_CONTENT, "NUL bytes and many control bytes: binary data, not text")
    try:
        return data.decode(encoding), [], None
    except UnicodeDecodeError as error:
        failure = f"not valid {encoding}: {error.reason} at byte {error.start}"
    if fallback_encoding:
        try:
            return data.decode(fallback_encoding), [reasons.REPAIRED_FALLBACK_ENCODING], None
        except UnicodeDecodeError as error:
            failure += f"; not valid {fallback_encoding} either: {error.reason} at byte {error.start}"
    return None, [], (reasons.UNDECODABLE_TEXT, failure)


_RAW_ONLY_KEYS = ("label_expected", "encoding", "target_encoding")


def check_raw_record(
    record: dict[str, Any],
    max_chars: int,
    require_label: bool,
    encoding: str = "utf-8",
    check_label: bool = True,
    fallback_encoding: str | None = None,
):
    """Decode and check one RawRecord (labels are ignored when `check_label` is False).

    Returns (TextRecord, None) or (None, (reason, detail)). The TextRecord carries
    "repairs": the list of fixes made to keep it (fallback decoding, NUL or
    invisible characters that cleaning removes). Pure Python so it can be unit
    tested without a pipeline; used by ingest and scoring alike.
    """
    text = record.get("text")
    repairs: list[str] = list(record.get("repairs", ()))  # made by a task's own check (Task.raw_check)
    # --encoding auto: the reader detected this record's file encoding and put it on the record.
    encoding = record.get("encoding") or ("utf-8" if encoding == "auto" else encoding)
    if text is None:
        return None, (reasons.MISSING_TEXT, "no text field, or the text is null")
    if isinstance(text, bytes):
        text, decode_repairs, failure = decode_text(text, encoding, fallback_encoding)
        repairs += decode_repairs
        if failure:
            return None, failure
    elif isinstance(text, str):
        if any("\udc80" <= ch <= "\udcff" for ch in text):
            # Undecodable bytes the reader kept as surrogates: retry them with the fallback.
            text, decode_repairs, failure = decode_text(
                text.encode("utf-8", "surrogateescape"), "utf-8", fallback_encoding
            )
            repairs += decode_repairs
            if failure:
                return None, failure
    else:
        return None, (reasons.NON_STRING_TEXT, f"text is a {type(text).__name__}, not a string")
    if not text.strip():
        return None, (reasons.EMPTY_TEXT, "empty or whitespace-only text")
    if len(text) > max_chars:
        return None, (reasons.TEXT_TOO_LONG, f"{len(text)} characters > --max_chars {max_chars}")
    if "\x00" in text:
        repairs.append(reasons.REPAIRED_NUL_BYTES)
    elif _CONTROL_OR_INVISIBLE.search(text):
        repairs.append(reasons.REPAIRED_CONTROL_CHARACTERS)
    split = record.get("split")
    raw_label = record.get("label")
    if split == names.SPLIT_UNSUP or not check_label:
        label = names.UNLABELED
    elif raw_label is None:
        if require_label and (split is not None or record.get("label_expected")):
            where = f"split {split!r}" if split is not None else "the label column"
            return None, (reasons.MISSING_LABEL, f"no label for a record in {where}")
        label = names.UNLABELED
    else:
        label = resolve_label(raw_label)
        if label is None:
            return None, (
                reasons.UNKNOWN_LABEL,
                f"label {str(raw_label)[:50]!r} not one of {sorted(names.LABEL_ALIASES)}",
            )
    checked = {k: v for k, v in record.items() if k not in _RAW_ONLY_KEYS}  # a task's own fields ride along
    checked.update(
        id=record["id"],
        source=record["source"],
        split=split,
        label=label,
        text=text,
        extra=record.get("extra") or {},
        repairs=repairs,
    )
    return checked, None


class _CheckRawDoFn(beam.DoFn):
    def __init__(
        self,
        max_chars: int,
        require_label: bool,
        encoding: str,
        check_label: bool,
        fallback_encoding: str | None,
        pre_check=None,
    ):
        self.pre_check = pre_check
        self.max_chars = max_chars
        self.require_label = require_label
        self.encoding = encoding
        self.check_label = check_label
        self.fallback_encoding = fallback_encoding
        self.passed = Metrics.counter("check", "passed")

    def process(self, record):
        checked, failure = self.pre_check(record) if self.pre_check is not None else (record, None)
        if not failure:
            checked, failure = check_raw_record(
                checked, self.max_chars, self.require_label, self.encoding, self.check_label, self.fallback_encoding
            )
        if failure:
            reason, detail = failure
            Metrics.counter("quarantine", reason).inc()
            yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, quarantine(record, "check", reason, detail))
        else:
            self.passed.inc()
            yield checked


class CheckRows(beam.PTransform):
    """RawRecord -> TextRecord (raw text decoded), tagged ``quarantine``: QuarantineRecord.

    Rejects: missing or non-string text, binary content, bytes undecodable in
    `encoding` (and in `fallback_encoding`, if given), empty or whitespace-only text, text over `max_chars`, and, with `check_label`, a
    missing label (when `require_label`) or an unknown label. Scoring runs it
    with check_label=False: the same text checks, labels irrelevant. `pre_check`, a
    task's own check (`Task.raw_check`), runs first: record -> (record, None) or (None, (reason, detail)).
    """

    def __init__(
        self,
        max_chars: int = DEFAULT_MAX_CHARS,
        require_label: bool = True,
        encoding: str = "utf-8",
        check_label: bool = True,
        fallback_encoding: str | None = None,
        pre_check=None,
    ):
        super().__init__()
        self.pre_check = pre_check
        self.max_chars = max_chars
        self.require_label = require_label
        self.encoding = encoding
        self.check_label = check_label
        self.fallback_encoding = fallback_encoding

    def expand(self, records):
        return records | "Check" >> beam.ParDo(
            _CheckRawDoFn(
                self.max_chars,
                self.require_label,
                self.encoding,
                self.check_label,
                self.fallback_encoding,
                self.pre_check,
            )
        ).with_outputs(QUARANTINE_TAG, main="records")


class ProgressLog:
    """Logs a worker's progress at most every `every_seconds` (units: records)."""

    def __init__(self, what: str, every_seconds: float = 15.0):
        self.what = what
        self.every = every_seconds
        self.count = 0
        self.last = time.monotonic()

    def add(self, n: int) -> None:
        self.count += n
        now = time.monotonic()
        if now - self.last >= self.every:
            LOGGER.info("%s: %d records so far (this worker)", self.what, self.count)
            self.last = now


class _CleanBatchDoFn(beam.DoFn):
    def __init__(self, spec: TextSpec, field: str = "text"):
        self.spec = spec
        self.field = field
        self.cleaned = Metrics.counter("clean", "records")

    def setup(self):
        common.import_in_worker("textprep.preprocessing")  # TensorFlow, lean in an SDK worker
        self.progress = ProgressLog("clean")

    def process(self, batch: list[dict[str, Any]]):
        from textprep import preprocessing

        field = self.field
        cleaned = preprocessing.clean_batch([record[field] for record in batch], self.spec)
        self.progress.add(len(batch))
        where = "" if field == "text" else f"{field}: "
        for record, text in zip(batch, cleaned, strict=True):
            if not text.strip():
                Metrics.counter("quarantine", reasons.EMPTY_AFTER_CLEANING).inc()
                yield beam.pvalue.TaggedOutput(
                    QUARANTINE_TAG,
                    quarantine(
                        record, "clean", reasons.EMPTY_AFTER_CLEANING, f"{where}nothing left after removing markup"
                    ),
                )
                continue
            self.cleaned.inc()
            yield {**record, field: text}


class CleanText(beam.PTransform):
    """TextRecord (raw text) -> TextRecord (cleaned text), tagged ``quarantine``.

    Cleaning is `textprep.preprocessing.TextPreprocessor.clean` with the run's
    TextSpec (a bool means the classifier's spec with that lowercasing), run on
    batches: the very function the exported model runs. Texts with nothing left
    after cleaning (markup only) are quarantined as ``empty_after_cleaning``.
    `field`: the record key of the text to clean (a task's second text, e.g. "target").
    """

    def __init__(self, spec: TextSpec | bool = True, field: str = "text"):
        super().__init__()
        self.spec = as_spec(spec)
        self.field = field

    def expand(self, records):
        return (
            records
            | "Batch" >> beam.BatchElements(min_batch_size=MAX_BATCH, max_batch_size=MAX_BATCH)
            | "Clean" >> beam.ParDo(_CleanBatchDoFn(self.spec, self.field)).with_outputs(QUARANTINE_TAG, main="records")
        )


def split_rank(split: str | None) -> int:
    order = names.DEDUPE_SPLIT_PRIORITY
    return order.index(split) if split in order else len(order)


def dedupe_key(record: dict[str, Any]) -> tuple[str, str, int, str, str]:
    """What the keep-first rules look at: (id, source, split rank, text fingerprint, target fingerprint).

    The target fingerprint ("" for tasks with one text) tells an exact duplicate pair from a
    pair that only shares its source.
    """
    # 128 of the fingerprint's 256 bits: collisions stay negligible, keys stay small.
    target = record.get("target")
    return (
        record["id"],
        record["source"],
        split_rank(record["split"]),
        text_fingerprint(record["text"])[:32],
        text_fingerprint(target)[:32] if target is not None else "",
    )


def keep_first_of_id(item):
    """(id, [key]) -> the kept key; tagged ``drops``: ((id, source), (reason, detail))."""
    record_id, keys = item
    keys = sorted(keys, key=lambda k: (k[2], k[1], k[3]))  # split rank, source, text
    yield keys[0]
    for duplicate in keys[1:]:
        detail = f"id {record_id!r} already used by {keys[0][1]}"
        yield beam.pvalue.TaggedOutput("drops", (duplicate[:2], (reasons.DUPLICATE_ID, detail)))


def keep_first_of_text(item):
    """(text digest, [key]) -> ((id, source), (reason, detail)) for each key not kept."""
    _, keys = item
    keys = sorted(keys, key=lambda k: (k[2], k[0]))  # split rank, id
    kept = keys[0]
    kept_in_test = kept[2] == split_rank(names.SPLIT_TEST)
    for duplicate in keys[1:]:
        leaked = kept_in_test and duplicate[2] != kept[2]
        if leaked:
            reason = reasons.DUPLICATE_OF_TEST
        elif duplicate[4] and duplicate[4] == kept[4]:
            reason = reasons.DUPLICATE_PAIR  # a sentence pair seen twice
        else:
            reason = reasons.DUPLICATE_TEXT
        yield duplicate[:2], (reason, f"same cleaned text as {kept[0]}")


DEDUPE_BUCKETS = 256  # hash buckets the dedupe keys travel in
PACK_EVERY = 64  # elements per blob while a PackedListFn accumulator fills (<= 256 x 64 tuples per bundle)


# The buckets only group keys (every key of one id, or of one text, lands in one bucket), so any
# fixed function of the id or digest gives the same decisions; these avoid a sha256 per key.
def keyed_by_id_bucket(record: dict[str, Any]) -> tuple[int, tuple]:
    """TextRecord -> (bucket of its id, its `dedupe_key`)."""
    key = dedupe_key(record)
    return zlib.crc32(key[0].encode("utf-8", "surrogatepass")) % DEDUPE_BUCKETS, key


def text_bucket(key: tuple) -> int:
    """A dedupe key's bucket by text: its fingerprint is hex digits of sha256 already."""
    return int(key[3][:6], 16) % DEDUPE_BUCKETS


def _pack(elements: list) -> bytes:
    # zlib level 1: ~1 us per dedupe key, and keys sharing path prefixes shrink ~3x.
    return zlib.compress(pickle.dumps(elements, protocol=pickle.HIGHEST_PROTOCOL), 1)


def _unpack(blob: bytes) -> list:
    return pickle.loads(zlib.decompress(blob))


class PackedListFn(beam.CombineFn):
    """Elements -> one list of them, in no particular order (like ToListCombineFn).

    An accumulator is packed as it fills (every `PACK_EVERY` elements pickled and compressed into
    one blob) and leaves a worker packed (`compact`). Beam's local runner decodes and holds the
    accumulators of a grouping step until the step's next stage runs, and the workers hold theirs
    to the end of a bundle; packed, that is a few bytes objects per key and bundle instead of a
    Python object per element (aclImdb's 100k dedupe keys: ~3.6 MB instead of ~12 MB pickled and
    ~40 MB as tuples). Accumulator: (elements, [blob]).
    """

    def create_accumulator(self):
        return [], []

    def add_input(self, accumulator, element):
        elements, blobs = accumulator
        elements.append(element)
        if len(elements) >= PACK_EVERY:  # packed as it fills: a bundle's keys are not all held as tuples
            blobs.append(_pack(elements))
            return [], blobs
        return accumulator

    def merge_accumulators(self, accumulators):
        elements, blobs = [], []
        for more_elements, more_blobs in accumulators:
            elements.extend(more_elements)
            blobs.extend(more_blobs)
        return elements, blobs

    def compact(self, accumulator):
        elements, blobs = accumulator
        if not elements:
            return accumulator
        return [], [*blobs, _pack(elements)]

    def extract_output(self, accumulator):
        elements, blobs = accumulator
        output = list(elements)
        for blob in blobs:
            output.extend(_unpack(blob))
        return output


def _each_group(item, field: int, decide):
    """(bucket, [key]) -> what `decide` yields for each (key[field], [keys sharing it]), in key order."""
    _, keys = item
    groups: dict[str, list] = {}
    for key in keys:
        groups.setdefault(key[field], []).append(key)
    for value in sorted(groups):
        yield from decide((value, groups[value]))


class DropDoFn(beam.DoFn):
    """TextRecord -> itself, or tagged ``quarantine`` if the decisions drop it."""

    def process(self, record, drops: dict):
        drop = drops.get((record["id"], record["source"]))
        if drop is None:
            yield record
            return
        reason, detail = drop
        Metrics.counter("quarantine", reason).inc()
        yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, quarantine(record, "dedupe", reason, detail))


class DropDuplicates(beam.PTransform):
    """TextRecord -> TextRecord with unique ids and unique cleaned texts; tagged ``quarantine``.

    Of records sharing an id, or sharing a cleaned text, one is kept
    deterministically: the one in the split listed first in
    `schemas.names.DEDUPE_SPLIT_PRIORITY` (so a text in train and test stays only
    in test), then the smallest id (for a shared id: the first source, then
    text). The others are quarantined with the id they duplicate.

    The decisions are made on small keys (id, source, split, 128 bits of the text's
    fingerprint) grouped by id and then by digest; the records themselves wait for
    the decisions in spill files under `spill_prefix` (`pipelines.spill`), so
    the runner never holds the corpus. A record is identified by (id, source),
    which is unique per record read from one input pattern.
    """

    def __init__(self, spill_prefix: str):
        super().__init__()
        self.spill_prefix = spill_prefix

    def expand(self, records):
        # Keys travel in lists per hash bucket (a combiner lifted into the workers), not one by one:
        # each bucket holds every key of its ids (then of its digests), so the decisions are the same
        # as grouping by id and by digest, and the runner moves ~2 x 256 pickled lists per bundle
        # instead of 2 x 100k keys (PackedListFn).
        by_id = (
            records
            | "KeyById" >> beam.Map(keyed_by_id_bucket)
            | "GroupById" >> beam.CombinePerKey(PackedListFn())
            | "OnePerId"
            >> beam.FlatMap(lambda item: _each_group(item, 0, keep_first_of_id)).with_outputs("drops", main="kept")
        )
        text_drops = (
            by_id.kept
            | "KeyByText" >> beam.Map(lambda key: (text_bucket(key), key))
            | "GroupByText" >> beam.CombinePerKey(PackedListFn())
            | "OnePerText" >> beam.FlatMap(lambda item: _each_group(item, 3, keep_first_of_text))
        )
        drops = (by_id.drops, text_drops) | "AllDrops" >> beam.Flatten()
        decided = (
            records
            | "WaitForDecisions" >> spill.SpillUntil(self.spill_prefix, after=drops)
            | "Drop"
            >> beam.ParDo(DropDoFn(), drops=beam.pvalue.AsDict(drops)).with_outputs(QUARANTINE_TAG, main="records")
        )
        return {"records": decided.records, QUARANTINE_TAG: decided[QUARANTINE_TAG]}


def assign_split(record: dict[str, Any], validation_fraction: float, test_fraction: float) -> dict[str, Any]:
    """Final split of a TextRecord, a pure function of its id and given split.

    Given train/test/validation/unsup splits are kept; unlabeled records without
    a split go to unsup; labelled records without a split are carved into test
    by `test_fraction`; train is carved into validation by `validation_fraction`.
    """
    split = record.get("split")
    if split not in names.SPLITS:
        if record["label"] == names.UNLABELED:
            split = names.SPLIT_UNSUP
        elif stable_fraction(record["id"], salt="test:") < test_fraction:
            split = names.SPLIT_TEST
        else:
            split = names.SPLIT_TRAIN
    if split == names.SPLIT_TRAIN and stable_fraction(record["id"], salt="validation:") < validation_fraction:
        split = names.SPLIT_VALIDATION
    if split != names.SPLIT_UNSUP and record["label"] == names.UNLABELED:
        # An unlabeled record cannot train or evaluate a classifier: it is LM text.
        split = names.SPLIT_UNSUP
    return {**record, "split": split}


class TokenCountsFn(beam.CombineFn):
    """Combines {token: count} dicts (one per batch; tokens as UTF-8 bytes) into one Counter."""

    def create_accumulator(self):
        return collections.Counter()

    def add_input(self, accumulator, counts):
        accumulator.update(counts)
        return accumulator

    def merge_accumulators(self, accumulators):
        # Into the first accumulator, as Beam allows: a corpus's counts are ~100k entries (~10 MB) per
        # accumulator, and a fresh Counter would hold one more copy of them at the merge.
        accumulators = iter(accumulators)
        merged = next(accumulators, None)
        if merged is None:
            return self.create_accumulator()
        for accumulator in accumulators:
            merged.update(accumulator)
        return merged

    def extract_output(self, accumulator):
        return accumulator  # a Counter is a dict: no copy


class _CountTokensDoFn(beam.DoFn):
    def __init__(self, spec: TextSpec, fields: tuple[str, ...] = ("text",)):
        self.spec = spec
        self.fields = fields

    def setup(self):
        common.import_in_worker("textprep.preprocessing")  # TensorFlow, lean in an SDK worker

    def process(self, batch: list[dict[str, Any]]):
        from textprep import preprocessing

        texts = [record[f] for record in batch for f in self.fields]
        yield preprocessing.count_token_bytes_batch(texts, self.spec)  # {token as UTF-8 bytes: count}


def choose_vocabulary(
    counts: dict[str, int] | dict[bytes, int], spec: TextSpec, max_size: int, min_count: int
) -> list[tuple[str, int]]:
    """Token counts of the training side -> [(token, count)] in id order (WordPiece: pieces learned from words)."""
    if spec.tokenizer == "wordpiece":
        return vocabulary.learn_wordpiece(counts, max_size, min_count, spec.reserved_tokens)
    return vocabulary.top_k_vocabulary(counts, max_size, min_count, spec.reserved_tokens)


class VocabularyFn(TokenCountsFn):
    """{token: count} dicts (one per batch) -> [(token, count)] in id order (`choose_vocabulary`).

    The vocabulary is chosen in the combiner's last step rather than in a step after it:
    CombineGlobally hands its output to a default-value step as a side input, which a worker
    keeps cached for the rest of the run. That output is then the vocabulary (at most
    `max_size` entries) instead of every distinct token's count (~150k entries, ~15 MB, for
    aclImdb), which grew with the corpus. No input: the reserved tokens alone.
    """

    def __init__(self, spec: TextSpec, max_size: int, min_count: int):
        self.spec = spec
        self.max_size = max_size
        self.min_count = min_count

    def extract_output(self, accumulator):
        return choose_vocabulary(accumulator, self.spec, self.max_size, self.min_count)


class BuildVocabulary(beam.PTransform):
    """TextRecord (cleaned) -> one element: [(token, count)] in id order.

    Token counting is combiner-based (a Counter per batch, merged), so the
    number of elements shuffled is the number of batches, not of tokens. The
    vocabulary is the `max_size` most frequent tokens (reserved ones included) seen
    at least `min_count` times, or for WordPiece the pieces learned from the word counts.
    `fields`: the record keys whose texts are counted (two for a joint source+target vocabulary).
    """

    def __init__(
        self, max_size: int, min_count: int, spec: TextSpec | bool = True, fields: tuple[str, ...] = ("text",)
    ):
        super().__init__()
        self.fields = tuple(fields)
        self.spec = as_spec(spec)
        if max_size <= len(self.spec.reserved_tokens):
            raise ValueError(f"max_size must exceed {len(self.spec.reserved_tokens)}, got {max_size}")
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        self.max_size = max_size
        self.min_count = min_count

    def expand(self, records):
        return (
            records
            | "Batch" >> beam.BatchElements(min_batch_size=MAX_BATCH, max_batch_size=MAX_BATCH)
            | "CountBatch" >> beam.ParDo(_CountTokensDoFn(self.spec, self.fields))
            | "Choose" >> beam.CombineGlobally(VocabularyFn(self.spec, self.max_size, self.min_count))
        )


class _ToIdsDoFn(beam.DoFn):
    def __init__(self, spec: TextSpec, field: str = "text", ids_key: str = names.FEATURE_TOKEN_IDS):
        self.spec = spec
        self.field = field
        self.ids_key = ids_key
        self._lookup = None
        self._vocab_key = None

    def setup(self):
        common.import_in_worker("textprep.preprocessing")  # TensorFlow, lean in an SDK worker
        self.progress = ProgressLog("token ids")

    def process(self, batch: list[dict[str, Any]], vocabulary: list[tuple[str, int]]):
        # The side input is the same on every bundle: build the TF table once per worker.
        key = (len(vocabulary), vocabulary[-1][0] if vocabulary else None)
        if self._lookup is None or self._vocab_key != key:
            from textprep import preprocessing

            self._lookup = preprocessing.CompiledLookup([token for token, _ in vocabulary], self.spec)
            self._vocab_key = key
        ids = self._lookup([record[self.field] for record in batch])
        self.progress.add(len(batch))
        for record, token_ids in zip(batch, ids, strict=True):
            yield {**record, self.ids_key: token_ids}


class ToTokenIds(beam.PTransform):
    """TextRecord (cleaned) -> TextRecord + "token_ids": list[int], given the vocabulary.

    Tokenization and lookup are `TextPreprocessor.tokenize` / `.lookup`, the
    functions the exported model runs, on batches. `field` / `ids_key`: the record keys of
    the text and of its ids (a task's second text: "target" -> "target_ids").
    """

    def __init__(
        self,
        vocabulary,
        spec: TextSpec | bool = True,
        field: str = "text",
        ids_key: str = names.FEATURE_TOKEN_IDS,
    ):
        super().__init__()
        self.vocabulary = vocabulary  # PCollection of one [(token, count)] list
        self.spec = as_spec(spec)
        self.field = field
        self.ids_key = ids_key

    def expand(self, records):
        return (
            records
            | "Batch" >> beam.BatchElements(min_batch_size=MAX_BATCH, max_batch_size=MAX_BATCH)
            | "Lookup"
            >> beam.ParDo(
                _ToIdsDoFn(self.spec, self.field, self.ids_key), vocabulary=beam.pvalue.AsSingleton(self.vocabulary)
            )
        )


def _text_stats() -> dict[str, Any]:
    return {"tokens": 0, "chars": 0, "oov": 0, "lengths": collections.Counter()}


def _add_text(stats: dict[str, Any], text: str, ids: list[int]) -> None:
    stats["chars"] += len(text)  # cleaned characters: bits per character divide by these
    stats["tokens"] += len(ids)
    stats["oov"] += ids.count(names.OOV_ID)  # list.count: a C loop, ~10x the generator's speed
    stats["lengths"][len(ids)] += 1


def _merge_text(target: dict[str, Any], stats: dict[str, Any]) -> None:
    for key in ("tokens", "chars", "oov"):
        target[key] += stats[key]
    target["lengths"].update(stats["lengths"])


class DatasetStatsFn(beam.CombineFn):
    """TextRecord with token_ids -> per split: records, labels, tokens, OOV, length histogram.

    `extra_fields`: (name, text key, ids key) of a task's further texts (translation's target);
    their statistics go under "fields": {name: {...}} of each split.
    """

    def __init__(self, labels: tuple[str, ...] = names.LABELS, extra_fields: tuple[tuple[str, str, str], ...] = ()):
        self.labels = tuple(labels)  # label names by id; a task without labels counts "unlabeled" records only
        self.extra_fields = tuple(extra_fields)

    def _new_split(self) -> dict[str, Any]:
        return {
            "records": 0,
            "labels": collections.Counter(),
            **_text_stats(),
            "fields": {name: _text_stats() for name, _, _ in self.extra_fields},
        }

    def create_accumulator(self):
        return {}

    def add_input(self, accumulator, record):
        split = accumulator.setdefault(record["split"], self._new_split())
        split["records"] += 1
        split["labels"][record["label"]] += 1
        _add_text(split, record["text"], record["token_ids"])
        for name, key, ids_key in self.extra_fields:
            _add_text(split["fields"][name], record[key], record[ids_key])
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[dict]):
        merged: dict = {}
        for accumulator in accumulators:
            for split, stats in accumulator.items():
                target = merged.setdefault(split, self._new_split())
                target["records"] += stats["records"]
                target["labels"].update(stats["labels"])
                _merge_text(target, stats)
                for name, field_stats in stats["fields"].items():
                    _merge_text(target["fields"][name], field_stats)
        return merged

    def extract_output(self, accumulator):
        return {split: summarize_split(stats, self.labels) for split, stats in sorted(accumulator.items())}


def length_percentiles(histogram: dict[int, int], percentiles=(50, 90, 95, 99)) -> dict[str, float]:
    """Exact percentiles (nearest rank) of token lengths from a {length: count} histogram."""
    total = sum(histogram.values())
    if total == 0:
        return {}
    result: dict[str, float] = {}
    ordered = sorted(histogram.items())
    for p in percentiles:
        rank = max(1, -(-p * total // 100))  # ceil(p/100 * total)
        seen = 0
        for length, count in ordered:
            seen += count
            if seen >= rank:
                result[f"p{p}"] = length
                break
    result["min"] = ordered[0][0]
    result["max"] = ordered[-1][0]
    result["mean"] = round(sum(length * count for length, count in ordered) / total, 2)
    return result


def _summarize_text(stats: dict) -> dict:
    return {
        "tokens": stats["tokens"],
        "chars": stats["chars"],
        "oov_rate": round(stats["oov"] / stats["tokens"], 6) if stats["tokens"] else 0.0,
        "token_length": length_percentiles(stats["lengths"]),
    }


def summarize_split(stats: dict, label_names: tuple[str, ...] = names.LABELS) -> dict:
    labels = {}
    for label_id, count in sorted(stats["labels"].items()):
        if label_names:  # a task without labels (a language model) lists none
            labels["unlabeled" if label_id == names.UNLABELED else label_names[label_id]] = count
    summary = {"records": stats["records"], "labels": labels, **_summarize_text(stats)}
    if stats.get("fields"):  # a task's further texts (translation's target side)
        summary["fields"] = {name: _summarize_text(field) for name, field in sorted(stats["fields"].items())}
    return summary


def count_by_reason(quarantined) -> Iterator:
    """Helper for pipelines: QuarantineRecord -> one {reason: count} dict."""
    return (
        quarantined
        | "ReasonOf" >> beam.Map(lambda q: q["reason"])
        | "CountReasons" >> beam.combiners.Count.PerElement()
        | "ReasonsToDict" >> beam.combiners.ToDict()
    )


def count_repairs(records):
    """Helper for pipelines: TextRecord -> one {repair: count} dict (see schemas.reasons REPAIRED_*)."""
    return (
        records
        | "RepairsOf" >> beam.FlatMap(lambda r: r.get("repairs", ()))
        | "CountRepairs" >> beam.combiners.Count.PerElement()
        | "RepairsToDict" >> beam.combiners.ToDict()
    )
