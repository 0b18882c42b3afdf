"""Scoring pipeline: raw text in any input format -> scored Parquet, with the exported model.

    python -m pipelines.score --input ../shared/data/imdb/mini/aclImdb --input_format aclimdb \\
        --model_dir models/imdb_mini --output_dir data/scored/imdb_mini --passthrough_columns rating,folder

Applies ``MODEL_DIR/export`` (raw strings in: the model cleans, tokenizes and
looks up itself, exactly as in training) with Beam's RunInference in batches.
Refuses a model that is not blessed (MODEL_DIR/blessing.json, see
`lstm_model.bless`) unless --allow_unblessed is given.
Writes to --output_dir:

* ``scored/part-SSSSS-of-NNNNN.parquet``: one row per scored text, Arrow schema
  `schemas.arrow.scored_schema` (id, source, probability, predicted_label,
  predicted_label_id, num_tokens, model_version, scored_at, pass-through columns);
* ``quarantine/part-*.jsonl``: rows that failed the row checks, with reasons;
* ``inputs.tsv`` and ``manifest.json``: counts (in = scored + quarantined), the
  model version and the sha256 of its model_info.json, input and output checksums.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import logging
import sys
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import cloud, common, runs, sinks, sources, tasks, transforms, validation
from pipelines.common import QUARANTINE_TAG, UserError
from pipelines.inference import (
    SignatureModelHandler,
    add_bulk_flags,
    check_blessing,
    length_sorted_calls,
    load_model_info,
    passthrough_values,
)
from schemas import names

__all__ = ["check_blessing", "length_sorted_calls", "load_model_info", "run"]

LOGGER = logging.getLogger("lstm_pipeline")
MIN_RECORDS_FOR_LENGTH_DRIFT = 100  # training records needed before document lengths are compared


class _ToScoredRow(beam.DoFn):
    """(record without text, PredictionResult) -> (id, scored row), or tagged ``quarantine``."""

    def __init__(self, task: tasks.Task, model_version: str, scored_at: datetime.datetime, passthrough):
        self.task = task
        self.model_version = model_version
        self.scored_at = scored_at
        self.passthrough = tuple(passthrough)

    def process(self, item):
        record, result = item
        columns = self.task.scored_row(result.inference)
        if isinstance(columns, tuple):
            reason, detail = columns
            yield beam.pvalue.TaggedOutput(
                QUARANTINE_TAG, common.quarantine({**record, "text": result.example}, "score", reason, detail)
            )
            return
        row = {
            "id": record["id"],
            "source": record["source"],
            **columns,
            "model_version": self.model_version,
            "scored_at": self.scored_at,
        }
        yield record["id"], {**row, **passthrough_values(record, self.passthrough)}


def key_for_inference(record: dict[str, Any]):
    """TextRecord -> (the record without its text, the text): the text goes to the model, the rest waits."""
    text = record["text"]
    return {k: v for k, v in record.items() if k != "text"}, text


def add_drift_flags(group) -> None:
    """The drift tolerances of every bulk pipeline that compares its input with the training data."""
    group.add_argument(
        "--drift_length_tolerance",
        type=float,
        default=0.25,
        help="Warn if median or p90 token length differs from training by more than this fraction (default: %(default)s).",
    )
    group.add_argument(
        "--drift_oov_tolerance",
        type=float,
        default=0.03,
        help="Warn if the OOV rate exceeds the training test split's by more than this (absolute; default: %(default)s).",
    )
    group.add_argument(
        "--drift_quarantine_tolerance",
        type=float,
        default=0.05,
        help="Warn if the quarantine rate exceeds ingest's by more than this (absolute; default: %(default)s).",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.score",
        description="Score raw text with an exported LSTM model (RunInference) and write Parquet: a classifier's "
        "probability and label, or a language model's log-likelihood (nats per token, bits per character).",
        epilog="Unrecognised flags go to Beam's PipelineOptions (e.g. --runner DataflowRunner).",
    )
    add_bulk_flags(parser, verb="Score", what="texts", input_format="aclimdb", text_column="text")
    parser.add_argument(
        "--label_column",
        default="label",
        help="Tabular inputs: label column, passed through if asked (default: %(default)s).",
    )
    parser.add_argument("--split_column", default="split", help="Tabular inputs: split column (default: %(default)s).")
    parser.add_argument(
        "--max_chars",
        type=int,
        default=transforms.DEFAULT_MAX_CHARS,
        help="Quarantine longer texts (default: %(default)s).",
    )
    parser.add_argument(
        "--batch_size",
        type=int,
        default=1024,
        help="Largest RunInference batch, in texts; the model is called on length-sorted chunks of 64 (default: %(default)s).",
    )
    parser.add_argument(
        "--rows_per_file", type=int, default=100_000, help="Rows per Parquet file (default: %(default)s)."
    )
    checks = parser.add_argument_group("validation and drift thresholds")
    checks.add_argument(
        "--max_quarantine_rate",
        type=float,
        default=0.05,
        help="Critical: fail the run above this share of quarantined records (default: %(default)s).",
    )
    checks.add_argument(
        "--max_oov_rate", type=float, default=0.1, help="Warn above this out-of-vocabulary rate (default: %(default)s)."
    )
    checks.add_argument(
        "--max_duplicate_rate",
        type=float,
        default=1.0,
        help="Warn above this duplicate share (scoring does not dedupe; default: %(default)s).",
    )
    add_drift_flags(checks)
    cloud.add_flags(parser)
    return parser


def build_pipeline(
    pipeline: beam.Pipeline, args: argparse.Namespace, info: dict[str, Any], scored_at: datetime.datetime
):
    out = args.output_dir
    task = tasks.get(info["task"])
    columns = sources.ColumnNames(args.text_column, args.label_column, args.id_column, args.split_column)
    passthrough = [c.strip() for c in args.passthrough_columns.split(",") if c.strip()]
    schema = task.scored_schema(passthrough)
    export_dir = common.join(args.model_dir.rstrip("/"), names.MODEL_EXPORT_DIR)

    read = pipeline | "Read" >> sources.ReadRawRecords(args.input, args.input_format, columns, encoding=args.encoding)
    checked = read["records"] | "CheckRows" >> transforms.CheckRows(
        args.max_chars,
        require_label=False,
        encoding=args.encoding,
        check_label=False,
        fallback_encoding=args.fallback_encoding,
    )
    handler = KeyedModelHandler(
        SignatureModelHandler(
            export_dir,
            task.score_signature,
            task.score_outputs,
            max_batch_size=args.batch_size,
            large_model=args.large_model,
        )
    )
    scored = (
        checked.records
        | "KeyByRecord" >> beam.Map(key_for_inference)
        | "RunInference" >> RunInference(handler)
        | "ToRow"
        >> beam.ParDo(_ToScoredRow(task, info["model_version"], scored_at, passthrough)).with_outputs(
            QUARANTINE_TAG, main="rows"
        )
    )
    written = [
        scored.rows
        | "WriteParquet"
        >> sinks.WriteSortedShards(
            common.join(out, names.SCORED_DIR, "part"),
            ".parquet",
            file_format=sinks.FORMAT_PARQUET,
            records_per_shard=args.rows_per_file,
            schema=schema,
        )
    ]
    quarantined = (
        read[QUARANTINE_TAG],
        checked[QUARANTINE_TAG],
        scored[QUARANTINE_TAG],
    ) | "AllQuarantine" >> beam.Flatten()
    written.append(quarantined | "Quarantine" >> sinks.WriteQuarantine(out))
    predicted = (
        scored.rows
        | "Group" >> beam.FlatMap(lambda kv: [g] if (g := task.scored_group(kv[1])) is not None else [])
        | "CountPredicted" >> beam.combiners.Count.PerElement()
        | "PredictedToDict" >> beam.combiners.ToDict()
        | "SortPredicted" >> beam.Map(lambda counts: dict(sorted(counts.items())))
    )
    options = suite_options(task, args)
    raw_rows = (
        read["records"]
        | "RawRowFeatures"
        >> beam.Map(validation.raw_row_features, encoding=args.encoding, fallback_encoding=args.fallback_encoding)
        | "ValidateRawRows" >> validation.ValidateRows(validation.load_suite(task.raw_suite, options))
    )
    scored_rows = (
        scored.rows
        | "ScoredRowFeatures" >> beam.Map(lambda kv: task.scored_row_features(kv[1]))
        | "ValidateScoredRows" >> validation.ValidateRows(validation.load_suite(task.scored_suite, options))
    )
    return pipeline | "WriteRunSummary" >> runs.WriteRunSummary(
        out,
        written=runs.collect_written("All", written),
        quarantine=transforms.count_by_reason(quarantined) | "QuarantineSummary" >> beam.Map(runs.quarantine_summary),
        records_in=runs.records_in(read),
        predicted=predicted,
        inputs_file=read[common.INPUTS_TAG] | "WriteInputList" >> runs.WriteInputList(out),
        raw_rows=raw_rows,
        scored_rows=scored_rows,
        corpus=scored.rows | "CorpusStats" >> beam.CombineGlobally(CorpusStatsFn()),
        repaired=transforms.count_repairs(checked.records)
        | "SortRepairs" >> beam.Map(lambda r: dict(sorted(r.items()))),
    )


def suite_options(task: tasks.Task, args: argparse.Namespace) -> dict[str, Any]:
    return {**vars(args), "labels": list(task.labels)}


class CorpusStatsFn(beam.CombineFn):
    """(id, scored row) -> {"rows", "tokens", "oov", "oov_rate", "token_length": percentiles}."""

    def create_accumulator(self):
        return {"rows": 0, "tokens": 0, "oov": 0, "lengths": {}}

    def add_input(self, accumulator, item):
        row = item[1]
        accumulator["rows"] += 1
        accumulator["tokens"] += row["num_tokens"]
        accumulator["oov"] += row["num_oov"]
        accumulator["lengths"][row["num_tokens"]] = accumulator["lengths"].get(row["num_tokens"], 0) + 1
        return accumulator

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for accumulator in accumulators:
            for key in ("rows", "tokens", "oov"):
                merged[key] += accumulator[key]
            for length, count in accumulator["lengths"].items():
                merged["lengths"][length] = merged["lengths"].get(length, 0) + count
        return merged

    def extract_output(self, accumulator):
        return {
            "rows": accumulator["rows"],
            "tokens": accumulator["tokens"],
            "oov_rate": accumulator["oov"] / accumulator["tokens"] if accumulator["tokens"] else 0.0,
            "token_length": transforms.length_percentiles(accumulator["lengths"]),
        }


def compute_drift(info: dict[str, Any], corpus: dict[str, Any], quarantine_rate: float, args) -> dict[str, Any]:
    """Compare the scored corpus with the training data recorded in model_info.json."""
    train_length = (info.get("dataset_token_length") or {}).get(names.SPLIT_TRAIN) or {}
    train_records = (info.get("dataset_records") or {}).get(names.SPLIT_TRAIN)
    if train_records is not None and train_records < MIN_RECORDS_FOR_LENGTH_DRIFT:
        # A model trained on a few long texts (one book, cut into splits) has no length distribution to drift from.
        train_length = {}
    reference_oov = (info.get("dataset_oov_rate") or {}).get(names.SPLIT_TEST)
    reference_quarantine = info.get("dataset_quarantine_rate")
    checks = []
    for percentile in ("p50", "p90"):
        expected, observed = train_length.get(percentile), corpus["token_length"].get(percentile)
        if expected and observed is not None:
            change = (observed - expected) / expected
            checks.append(
                {
                    "measure": f"token length {percentile}",
                    "training": expected,
                    "scoring": observed,
                    "change": round(change, 4),
                    "tolerance": f"±{args.drift_length_tolerance:.0%} relative",
                    "drift": abs(change) > args.drift_length_tolerance,
                }
            )
    if reference_oov is not None:
        change = corpus["oov_rate"] - reference_oov
        checks.append(
            {
                "measure": "OOV rate (vs training test split)",
                "training": round(reference_oov, 6),
                "scoring": round(corpus["oov_rate"], 6),
                "change": round(change, 6),
                "tolerance": f"+{args.drift_oov_tolerance} absolute",
                "drift": change > args.drift_oov_tolerance,
            }
        )
    if reference_quarantine is not None:
        change = quarantine_rate - reference_quarantine
        checks.append(
            {
                "measure": "quarantined share",
                "training": round(reference_quarantine, 6),
                "scoring": round(quarantine_rate, 6),
                "change": round(change, 6),
                "tolerance": f"+{args.drift_quarantine_tolerance} absolute",
                "drift": change > args.drift_quarantine_tolerance,
            }
        )
    warnings = [
        f"{c['measure']}: training {c['training']}, scoring {c['scoring']} (change {c['change']}, tolerance {c['tolerance']})"
        for c in checks
        if c["drift"]
    ]
    return {"checks": checks, "warnings": warnings, "corpus": corpus}


def drift_html(drift: dict[str, Any]) -> str:
    import html

    rows = "".join(
        f"<tr><td>{html.escape(c['measure'])}</td><td>{c['training']}</td><td>{c['scoring']}</td><td>{c['change']}</td>"
        f"<td>{html.escape(c['tolerance'])}</td><td class='{'warn' if c['drift'] else 'pass'}'>{'DRIFT' if c['drift'] else 'ok'}</td></tr>"
        for c in drift["checks"]
    )
    return (
        "<p>The scored corpus compared with the data the model was trained on (from the model's model_info.json).</p>"
        "<table><tr><th>measure</th><th>training</th><th>scoring</th><th>change</th><th>tolerance</th><th>status</th></tr>"
        + rows
        + "</table>"
    )


def write_manifest(args, beam_args, info, scored_at, seconds) -> dict[str, Any]:
    out = args.output_dir
    task = tasks.get(info["task"])
    summary = runs.read_summary(out)
    files = [tuple(item) for item in summary["written"]] + [tuple(summary["inputs_file"])]
    outputs = common.describe_outputs(out, files)
    scored = sum(v["records"] for k, v in outputs.items() if k.startswith(names.SCORED_DIR + "/"))
    quarantined = summary["quarantine"]["total"]
    manifest = {
        "kind": "scored",
        "task": task.name,
        "model": {
            "model_dir": args.model_dir,
            "model_version": info["model_version"],
            "model_info_sha256": info["_model_info_sha256"],
            "blessed": info.get("_blessed"),
            "dataset_fingerprint": info.get("dataset_fingerprint"),
        },
        "scored_at": scored_at.isoformat(),
        "counts": {
            "records_in": summary["records_in"],
            "scored": scored,
            "quarantined": quarantined,
            "balanced": summary["records_in"] == scored + quarantined,
        },
        "predicted": summary["predicted"],
        "quarantine": summary["quarantine"],
        "repaired": summary["repaired"],
        "options": {k: v for k, v in sorted(vars(args).items())},
        "beam_args": beam_args,
        "inputs_sha256": outputs[names.INPUTS_FILE]["sha256"],
        "outputs": outputs,
        "run": {"seconds": round(seconds, 1)},
    }
    records_in = max(summary["records_in"], 1)
    drift = compute_drift(info, summary["corpus"], quarantined / records_in, args)
    options = suite_options(task, args)
    reports = [
        validation.evaluate(
            validation.load_suite(task.raw_suite, options),
            summary["raw_rows"],
            {"quarantine_rate": quarantined / records_in, "duplicate_rate": 0.0},
        ),
        validation.evaluate(
            validation.load_suite(task.scored_suite, options),
            summary["scored_rows"],
            {"quarantine_rate": quarantined / records_in, "oov_rate": summary["corpus"]["oov_rate"]},
        ),
    ]
    validation.write_report(
        out, f"Scoring validation: {args.input}", reports, [("Drift against training data", drift_html(drift))]
    )
    manifest["drift"] = drift
    manifest["validation"] = runs.validation_block(reports)
    common.write_json(common.join(out, names.MANIFEST_FILE), manifest)
    manifest["_reports"] = reports
    return manifest


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args, beam_args = build_parser().parse_known_args(argv)
    common.setup_logging()
    if args.batch_size < 1 or args.rows_per_file < 1 or args.max_chars < 1:
        raise UserError("--batch_size, --rows_per_file and --max_chars must be >= 1")
    common.check_encodings(args)
    args.output_dir = cloud.expand_date(args.output_dir)
    dry_run = cloud.check_paths(
        beam_args, {"--input": args.input, "--output_dir": args.output_dir, "--model_dir": args.model_dir}
    )
    info = load_model_info(args.model_dir)
    try:
        tasks.get(info["task"]).scored_schema([c.strip() for c in args.passthrough_columns.split(",") if c.strip()])
    except ValueError as error:
        raise UserError(f"--passthrough_columns: {error}") from None
    info["_blessed"] = check_blessing(args.model_dir, info, args.allow_unblessed)
    if not dry_run:
        sources.resolve_input_pattern(args.input, args.input_format)  # fail fast on a bad path
        common.prepare_output_dir(args.output_dir, args.overwrite)
    scored_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    LOGGER.info("scoring %s (%s) with %s -> %s", args.input, args.input_format, info["model_version"], args.output_dir)
    manifest, reports = cloud.run_pipeline(
        "score",
        args,
        beam_args,
        PipelineOptions(beam_args),
        lambda pipeline: build_pipeline(pipeline, args, info, scored_at),
        functools.partial(write_manifest, args, beam_args, info, scored_at),
    )
    if dry_run:
        return manifest
    counts = manifest["counts"]
    print(
        f"scoring finished in {manifest['run']['seconds']} s: {counts['records_in']} records in = "
        f"{counts['scored']} scored + {counts['quarantined']} quarantined; "
        + (f"predicted {manifest['predicted']}; " if manifest["predicted"] else "")
        + f"quarantine {manifest['quarantine']['by_reason']} -> {args.output_dir}",
        flush=True,
    )
    for warning in manifest["drift"]["warnings"]:
        LOGGER.warning("drift: %s", warning)
    print(
        f"  drift: {len(manifest['drift']['warnings'])} warning(s); validation: "
        f"{len(manifest['validation']['critical_failures'])} critical, {len(manifest['validation']['warnings'])} warnings "
        f"-> {common.join(args.output_dir, validation.VALIDATION_HTML)}",
        flush=True,
    )
    cloud.finish(args.output_dir, manifest, reports)
    return manifest


def main() -> None:
    sys.exit(common.main_with_user_errors(run))


if __name__ == "__main__":
    main()
