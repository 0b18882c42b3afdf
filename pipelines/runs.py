"""Run plumbing every pipeline shares: the input list, the run summary, the manifest's validation block, the end.

A pipeline computes its figures as single-element PCollections; `WriteRunSummary` writes
them, by name, to ``OUT/_run_summary.json`` once every one is ready. After the pipeline
ends, the driver reads it back (`read_summary`), builds the manifest and validation
report, and `finish` checks ``records in = records out + quarantined`` and the critical
expectations (a UserError with one line if either fails).
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines import common, validation
from schemas import names
from schemas.cli import UserError

RUN_SUMMARY_FILE = "_run_summary.json"


def write_inputs(inputs: list[tuple], path: str) -> tuple[str, int]:
    """Writes inputs.tsv (``path<TAB>sha256<TAB>bytes``, plus ``<TAB>encoding<TAB>confidence`` when the
    encoding was detected per file, sorted); returns (path, number of files)."""
    with FileSystems.create(path) as handle:
        handle.write("".join("\t".join(str(v) for v in row) + "\n" for row in sorted(inputs)).encode("utf-8"))
    return path, len(inputs)


def read_input_encodings(output_dir: str) -> dict[str, dict[str, Any]]:
    """{path: {"encoding", "confidence"}} of the files in OUT/inputs.tsv whose encoding was detected."""
    with FileSystems.open(common.join(output_dir, names.INPUTS_FILE)) as handle:
        rows = [line.split("\t") for line in handle.read().decode("utf-8").splitlines()]
    return {row[0]: {"encoding": row[3], "confidence": float(row[4])} for row in rows if len(row) >= 5}


class WriteInputList(beam.PTransform):
    """(path, sha256, bytes) per input file -> one (inputs.tsv path, number of files)."""

    def __init__(self, output_dir: str):
        super().__init__()
        self.path = common.join(output_dir, names.INPUTS_FILE)

    def expand(self, inputs):
        return inputs | "InputList" >> beam.combiners.ToList() | "WriteInputs" >> beam.Map(write_inputs, self.path)


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
    """A reader's outputs -> one count of every record read (accepted or rejected by the reader)."""
    return (
        (read["records"], read[common.QUARANTINE_TAG])
        | "AllRead" >> beam.Flatten()
        | "CountIn" >> beam.combiners.Count.Globally()
    )


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
