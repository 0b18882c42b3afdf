"""Run plumbing every pipeline shares: the input list, the run summary, the manifest's validation block, the end.

A pipeline computes its figures as single-element PCollections; `WriteRunSummary` writes
them, by name, to ``OUT/_run_summary.json`` once every one is ready. After the pipeline
ends, the driver reads it back (`read_summary`), builds the manifest and validation
report, and `finish` checks ``records in = records out + quarantined`` and the critical
expectations (a UserError with one line if either fails).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from pipelines import common, spill, validation
from schemas import names
from schemas.cli import UserError

RUN_SUMMARY_FILE = "_run_summary.json"


# Rows of inputs.tsv a worker sorts in memory before writing them to a part file (~300 bytes each as
# tuples: 10k rows ~3 MB, the same at any corpus size); parts merged per round.
ROWS_PER_PART = 10_000
PARTS_PER_MERGE = 128


def _format_input_row(row: tuple) -> str:
    return "\t".join(str(v) for v in row) + "\n"


class InputPartsDoFn(beam.DoFn):
    """(path, sha256, bytes[, encoding, confidence]) -> (part file, rows) per sorted part file written.

    A part holds one JSON list per line, sorted as tuples: `merge_input_parts` merges the parts
    into inputs.tsv without holding the rows, so neither the runner nor a worker needs memory
    that grows with the number of input files.
    """

    def __init__(self, parts_dir: str, rows_per_part: int | None = None):
        self.parts_dir = parts_dir
        self.rows_per_part = rows_per_part or ROWS_PER_PART

    def start_bundle(self):
        self.rows: list[tuple] = []

    def process(self, row):
        self.rows.append(tuple(row))
        if len(self.rows) >= self.rows_per_part:
            yield self._write()

    def finish_bundle(self):
        if self.rows:
            yield GlobalWindows.windowed_value(self._write())

    def _write(self) -> tuple[str, int]:
        rows, self.rows = sorted(self.rows), []
        # A fresh name per part: a retried bundle writes new parts, and only committed outputs are merged.
        path = FileSystems.join(self.parts_dir, f"{uuid.uuid4().hex}.jsonl")
        _write_part(path, rows)
        return path, len(rows)


def _write_part(path: str, rows: Iterable[tuple]) -> None:
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        handle.write("".join(json.dumps(list(row)) + "\n" for row in rows).encode("utf-8"))


def _part_rows(handle) -> Iterator[tuple]:
    for line in handle:
        yield tuple(json.loads(line))


def _merged(paths: list[str]) -> Iterator[tuple]:
    """The rows of sorted part files, in order, streamed (one open file and one row per part)."""
    with contextlib.ExitStack() as stack:
        handles = [
            stack.enter_context(FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED))
            for path in paths
        ]
        yield from heapq.merge(*(_part_rows(handle) for handle in handles))


def merge_input_parts(parts: list[tuple[str, int]], path: str, parts_dir: str) -> tuple[str, int]:
    """Sorted part files -> inputs.tsv at `path`; deletes the parts. Returns (path, number of files).

    inputs.tsv: one input file per line, ``path<TAB>sha256<TAB>bytes``, plus ``<TAB>encoding<TAB>confidence``
    when the encoding was detected per file, sorted by those fields. More than PARTS_PER_MERGE parts are merged in rounds.
    """
    paths = sorted(part for part, _ in parts)
    written = list(paths)
    while len(paths) > PARTS_PER_MERGE:
        rounds = []
        for start in range(0, len(paths), PARTS_PER_MERGE):
            merged = FileSystems.join(parts_dir, f"{uuid.uuid4().hex}.jsonl")
            _write_part(merged, _merged(paths[start : start + PARTS_PER_MERGE]))
            rounds.append(merged)
        written += rounds
        paths = rounds
    count = 0
    with FileSystems.create(path) as handle:
        for row in _merged(paths):
            handle.write(_format_input_row(row).encode("utf-8"))
            count += 1
    return spill.delete_spills((path, count), [(part, None) for part in written], parts_dir)


def read_input_encodings(output_dir: str) -> dict[str, dict[str, Any]]:
    """{path: {"encoding", "confidence"}} of the files in OUT/inputs.tsv whose encoding was detected."""
    with FileSystems.open(common.join(output_dir, names.INPUTS_FILE)) as handle:
        rows = [line.split("\t") for line in handle.read().decode("utf-8").splitlines()]
    return {row[0]: {"encoding": row[3], "confidence": float(row[4])} for row in rows if len(row) >= 5}


class WriteInputList(beam.PTransform):
    """(path, sha256, bytes) per input file -> one (inputs.tsv path, number of files).

    The rows go through sorted part files under ``OUT/inputs-spill-*/`` and are merged into
    inputs.tsv (`merge_input_parts`): only the parts' names cross stages, so memory does not grow
    with the number of input files.
    """

    def __init__(self, output_dir: str):
        super().__init__()
        self.path = common.join(output_dir, names.INPUTS_FILE)
        self.parts_prefix = common.join(output_dir, "inputs")

    def expand(self, inputs):
        parts_dir = spill.new_spill_dir(self.parts_prefix)
        return (
            inputs
            | "WriteParts" >> beam.ParDo(InputPartsDoFn(parts_dir))
            | "ListParts" >> beam.combiners.ToList()
            | "MergeParts" >> beam.Map(merge_input_parts, self.path, parts_dir)
        )


class WriteRunSummary(beam.PTransform):
    """PBegin -> writes {name: value} of named single-element PCollections to OUT/_run_summary.json."""

    def __init__(self, output_dir: str, **figures):
        super().__init__()
        self.output_dir = output_dir
        self.figures = figures

    def expand(self, pbegin):
        keys = sorted(self.figures)
        side_inputs = {f"figure_{i}": beam.pvalue.AsSingleton(self.figures[key]) for i, key in enumerate(keys)}

        def summarize(_, **values):
            return {key: values[f"figure_{i}"] for i, key in enumerate(keys)}

        path = common.join(self.output_dir, RUN_SUMMARY_FILE)
        return (
            pbegin
            | "SummaryTrigger" >> beam.Create([None])
            | "Summary" >> beam.Map(summarize, **side_inputs)
            | "WriteSummary" >> beam.Map(lambda summary: common.write_json(path, summary))
        )


def collect_written(pipeline_label: str, written: list) -> Any:
    """Written-shard PCollections of (path, records) -> one sorted list of [path, records]."""
    return (
        tuple(written)
        | f"{pipeline_label}Written" >> beam.Flatten()
        | f"{pipeline_label}WrittenList" >> beam.combiners.ToList()
        | f"{pipeline_label}Sorted" >> beam.Map(lambda items: sorted([list(item) for item in items]))
    )


def records_in(read) -> Any:
    """A reader's outputs -> one count of every record read (accepted or rejected by the reader).

    Each output is counted where it is produced (Count's partial sums run in the reading stage) and
    only the two numbers are added: a Flatten of the outputs first would make Beam's local runner
    hold every record read in its own memory until a separate counting stage ran.
    """
    counts = [
        read[tag] | f"CountIn{name}" >> beam.combiners.Count.Globally()
        for name, tag in (("Records", "records"), ("Rejected", common.QUARANTINE_TAG))
    ]
    return tuple(counts) | "BothCounts" >> beam.Flatten() | "CountIn" >> beam.CombineGlobally(sum)


def read_summary(output_dir: str) -> dict[str, Any]:
    """The run summary written by WriteRunSummary (the file is removed: it is scratch)."""
    path = common.join(output_dir, RUN_SUMMARY_FILE)
    summary = common.read_json(path)
    FileSystems.delete([path])
    return summary


def quarantine_summary(by_reason: dict[str, int]) -> dict[str, Any]:
    return {"total": sum(by_reason.values()), "by_reason": dict(sorted(by_reason.items()))}


def validation_block(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest's "validation" entry from evaluated suites."""
    return {
        "success": all(r["success"] for r in reports),
        "critical_failures": [
            f"{e['type']}({e['column']}): {e['observed']}" for r in reports for e in r["critical_failures"]
        ],
        "warnings": [f"{e['type']}({e['column']}): {e['observed']}" for r in reports for e in r["warnings"]],
        "report": validation.VALIDATION_HTML,
    }


def finish(output_dir: str, counts: dict[str, Any], reports: list[dict[str, Any]]) -> None:
    """The end of every run: counts must balance, warnings logged, a critical failure is one line (exit 2).

    Called once manifest.json is written: the run-in-progress marker goes (the directory holds a complete run).
    """
    common.finish_output_dir(output_dir)
    if not counts["balanced"]:
        raise UserError("records in != records out + quarantined; see manifest.json counts")
    validation.log_warnings(reports)
    validation.raise_on_critical(reports, common.join(output_dir, validation.VALIDATION_HTML))
