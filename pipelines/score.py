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
import hashlib
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import common, sinks, sources, transforms, validation
from pipelines.common import QUARANTINE_TAG, UserError
from schemas import arrow, names, reasons

LOGGER = logging.getLogger("lstm_pipeline")
RUN_SUMMARY_FILE = "_run_summary.json"


def length_sorted_calls(texts: Sequence[str], size: int) -> list[list[int]]:
    """Indices of `texts` cut into model calls of `size` texts of similar length (0 or >= len: one call).

    A model call pads every text to the longest one in it and the LSTM runs over the padding
    too; calls of texts sorted by characters (a proxy for tokens) cut the padded steps.
    """
    if not 0 < size < len(texts):
        return [list(range(len(texts)))] if texts else []
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[start : start + size] for start in range(0, len(order), size)]


class RawTextModelHandler(ModelHandler[str, PredictionResult, Any]):
    """RunInference handler for the exported SavedModel: a batch of raw strings per call.

    Example: str (raw text). Inference: {"probability": float, "label_id": int,
    "num_tokens": int, "num_oov": int}.
    """

    def __init__(self, export_dir: str, min_batch_size: int = 16, max_batch_size: int = 1024, bucket_size: int = 64):
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self.export_dir = export_dir
        # Texts per model call inside a batch (see length_sorted_calls); 0 = the whole batch in one call.
        self.bucket_size = bucket_size
        self._progress = None  # created on the worker, in run_inference

    def load_model(self):
        from lstm_model.export import load_exported

        return load_exported(self.export_dir).signatures[names.SERVING_SIGNATURE]

    def run_inference(self, batch: Sequence[str], model, inference_args=None) -> Iterable[PredictionResult]:
        import numpy as np
        import tensorflow as tf

        texts = list(batch)
        if not texts:
            return []
        if self._progress is None:
            self._progress = transforms.ProgressLog("scored")
        self._progress.add(len(texts))
        columns: dict[str, np.ndarray] = {}
        for rows in length_sorted_calls(texts, self.bucket_size):  # results go back in batch order
            outputs = model(text=tf.constant([texts[i] for i in rows], dtype=tf.string))
            for key in ("probability", "label_id", "num_tokens", "num_oov"):
                values = outputs[key].numpy()
                columns.setdefault(key, np.empty(len(texts), values.dtype))[rows] = values
        probability, label_id = columns["probability"], columns["label_id"]
        num_tokens, num_oov = columns["num_tokens"], columns["num_oov"]
        return [
            PredictionResult(
                text,
                {"probability": float(p), "label_id": int(label), "num_tokens": int(n), "num_oov": int(o)},
                self.export_dir,
            )
            for text, p, label, n, o in zip(batch, probability, label_id, num_tokens, num_oov, strict=True)
        ]

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        return sum(len(text.encode("utf-8")) for text in batch)

    def get_metrics_namespace(self) -> str:
        return "lstm_score"


def load_model_info(model_dir: str) -> dict[str, Any]:
    """model_info.json of a trained model, checked for what scoring needs (UserError if not)."""
    model_dir = model_dir.rstrip("/")
    info_path = common.join(model_dir, names.MODEL_INFO_FILE)
    if not common.exists(model_dir):
        raise UserError(f"--model_dir {model_dir} does not exist")
    if not common.exists(info_path):
        raise UserError(
            f"--model_dir {model_dir} has no {names.MODEL_INFO_FILE}: not a trained model directory (run make train)"
        )
    try:
        info = common.read_json(info_path)
    except (ValueError, OSError) as error:
        raise UserError(f"cannot read {info_path}: {error}") from None
    if not common.exists(common.join(model_dir, names.MODEL_EXPORT_DIR, "saved_model.pb")):
        raise UserError(f"--model_dir {model_dir} has no exported model ({names.MODEL_EXPORT_DIR}/saved_model.pb)")
    vocab_path = common.join(model_dir, names.VOCAB_FILE)
    if not common.exists(vocab_path):
        raise UserError(f"--model_dir {model_dir} is missing its vocabulary ({names.VOCAB_FILE})")
    with FileSystems.open(vocab_path) as handle:
        vocabulary_size = sum(1 for line in handle.read().decode("utf-8").splitlines() if line)
    if vocabulary_size != info.get("vocabulary_size"):
        raise UserError(
            f"{vocab_path} has {vocabulary_size} tokens but the model was trained with "
            f"{info.get('vocabulary_size')}: the vocabulary does not belong to this model"
        )
    with FileSystems.open(info_path) as handle:
        info["_model_info_sha256"] = hashlib.sha256(handle.read()).hexdigest()
    return info


def check_blessing(model_dir: str, info: dict[str, Any], allow_unblessed: bool = False) -> bool:
    """True if MODEL_DIR/blessing.json blesses this model version; else UserError, or a warning with --allow_unblessed."""
    path = common.join(model_dir.rstrip("/"), names.MODEL_BLESSING_FILE)
    try:
        blessing = common.read_json(path) if common.exists(path) else None
    except (ValueError, OSError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    if blessing is None:
        problem = f"--model_dir {model_dir} has no {names.MODEL_BLESSING_FILE} (run python -m lstm_model.report --model_dir {model_dir})"
    elif blessing.get("model_version") not in (None, info.get("model_version")):
        problem = f"{path} is for model {blessing.get('model_version')}, not {info.get('model_version')}"
    elif blessing.get("blessed") is True:
        return True
    else:
        problem = f"model in {model_dir} is not blessed ({blessing.get('reason', 'no reason recorded')})"
    if not allow_unblessed:
        raise UserError(f"{problem}; pass --allow_unblessed to score anyway")
    LOGGER.warning("scoring anyway (--allow_unblessed): %s", problem)
    return False


class _ToScoredRow(beam.DoFn):
    def __init__(self, model_version: str, scored_at: datetime.datetime, passthrough: Sequence[str]):
        self.model_version = model_version
        self.scored_at = scored_at
        self.passthrough = tuple(passthrough)

    def process(self, item):
        record, result = item
        inference = result.inference
        if inference["num_tokens"] == 0:
            yield beam.pvalue.TaggedOutput(
                QUARANTINE_TAG,
                common.quarantine(
                    {**record, "text": result.example},
                    "score",
                    reasons.EMPTY_AFTER_CLEANING,
                    "no tokens after cleaning",
                ),
            )
            return
        label_id = inference["label_id"]
        row = {
            "id": record["id"],
            "source": record["source"],
            "probability": inference["probability"],
            "predicted_label": names.LABELS[label_id],
            "predicted_label_id": label_id,
            "num_tokens": inference["num_tokens"],
            "num_oov": inference["num_oov"],
            "model_version": self.model_version,
            "scored_at": self.scored_at,
        }
        extra = record.get("extra") or {}
        for column in self.passthrough:
            value = extra.get(column, record.get(column))
            row[column] = None if value is None else str(value)
        yield record["id"], row


def _key_for_inference(record: dict[str, Any]):
    text = record["text"]
    return {k: v for k, v in record.items() if k != "text"}, text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.score",
        description="Score raw text with an exported LSTM model (RunInference) and write Parquet.",
        epilog="Unrecognised flags go to Beam's PipelineOptions (e.g. --runner DataflowRunner).",
    )
    parser.add_argument("--input", required=True, help="Folder, file or glob (local or gs://).")
    parser.add_argument(
        "--input_format", default="aclimdb", choices=sources.FORMATS, help="Layout of --input (default: %(default)s)."
    )
    parser.add_argument("--model_dir", required=True, help="Trained model directory (from lstm_model.train).")
    parser.add_argument("--output_dir", required=True, help="Directory for scored Parquet, quarantine and manifest.")
    parser.add_argument("--overwrite", action="store_true", help="Replace a previous run in --output_dir.")
    parser.add_argument(
        "--allow_unblessed", action="store_true", help="Score with a model that is not blessed (see lstm_model.bless)."
    )
    parser.add_argument(
        "--passthrough_columns", default="", help="Comma-separated input columns copied to the output as strings."
    )
    parser.add_argument("--text_column", default="text", help="Tabular inputs: text column (default: %(default)s).")
    parser.add_argument(
        "--label_column",
        default="label",
        help="Tabular inputs: label column, passed through if asked (default: %(default)s).",
    )
    parser.add_argument(
        "--id_column", default="id", help="Tabular inputs: id column; FILE:ROW if absent (default: %(default)s)."
    )
    parser.add_argument("--split_column", default="split", help="Tabular inputs: split column (default: %(default)s).")
    parser.add_argument("--encoding", default="utf-8", help="Encoding of raw text bytes (default: %(default)s).")
    parser.add_argument("--fallback_encoding", default=None, help="Encoding tried when --encoding fails (e.g. cp1252).")
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
    checks.add_argument(
        "--drift_length_tolerance",
        type=float,
        default=0.25,
        help="Warn if median or p90 token length differs from training by more than this fraction (default: %(default)s).",
    )
    checks.add_argument(
        "--drift_oov_tolerance",
        type=float,
        default=0.03,
        help="Warn if the OOV rate exceeds the training test split's by more than this (absolute; default: %(default)s).",
    )
    checks.add_argument(
        "--drift_quarantine_tolerance",
        type=float,
        default=0.05,
        help="Warn if the quarantine rate exceeds ingest's by more than this (absolute; default: %(default)s).",
    )
    return parser


def build_pipeline(
    pipeline: beam.Pipeline, args: argparse.Namespace, info: dict[str, Any], scored_at: datetime.datetime
) -> None:
    out = args.output_dir
    columns = sources.ColumnNames(args.text_column, args.label_column, args.id_column, args.split_column)
    passthrough = [c.strip() for c in args.passthrough_columns.split(",") if c.strip()]
    schema = arrow.scored_schema(passthrough)
    export_dir = common.join(args.model_dir.rstrip("/"), names.MODEL_EXPORT_DIR)

    read = pipeline | "Read" >> sources.ReadRawRecords(args.input, args.input_format, columns)
    checked = read["records"] | "CheckRows" >> transforms.CheckRows(
        args.max_chars,
        require_label=False,
        encoding=args.encoding,
        check_label=False,
        fallback_encoding=args.fallback_encoding,
    )
    handler = KeyedModelHandler(RawTextModelHandler(export_dir, max_batch_size=args.batch_size))
    scored = (
        checked.records
        | "KeyByRecord" >> beam.Map(_key_for_inference)
        | "RunInference" >> RunInference(handler)
        | "ToRow"
        >> beam.ParDo(_ToScoredRow(info["model_version"], scored_at, passthrough)).with_outputs(
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
    inputs_path = (
        read[common.INPUTS_TAG]
        | "InputList" >> beam.combiners.ToList()
        | "WriteInputs" >> beam.Map(_write_inputs, common.join(out, names.INPUTS_FILE))
    )
    predicted = (
        scored.rows
        | "PredictedLabel" >> beam.Map(lambda kv: kv[1]["predicted_label"])
        | "CountPredicted" >> beam.combiners.Count.PerElement()
        | "PredictedToDict" >> beam.combiners.ToDict()
    )
    records_in = (
        (read["records"], read[QUARANTINE_TAG])
        | "AllRead" >> beam.Flatten()
        | "CountIn" >> beam.combiners.Count.Globally()
    )
    options = vars(args)
    raw_rows = (
        read["records"]
        | "RawRowFeatures" >> beam.Map(validation.raw_row_features)
        | "ValidateRawRows" >> validation.ValidateRows(validation.load_suite("raw_rows", options))
    )
    scored_rows = (
        scored.rows
        | "ScoredRowFeatures" >> beam.Map(lambda kv: {k: kv[1][k] for k in ("id", "probability", "predicted_label")})
        | "ValidateScoredRows" >> validation.ValidateRows(validation.load_suite("scored_output", options))
    )
    corpus = scored.rows | "CorpusStats" >> beam.CombineGlobally(CorpusStatsFn())
    repaired = transforms.count_repairs(checked.records)
    (
        pipeline
        | "SummaryTrigger" >> beam.Create([None])
        | "Summary"
        >> beam.Map(
            lambda _, written, reasons_count, records_in, predicted, inputs_file, raw_rows, scored_rows, corpus, repaired: {
                "validation_rows": {"raw_rows": raw_rows, "scored_output": scored_rows},
                "corpus": corpus,
                "repaired": dict(sorted(repaired.items())),
                "written": sorted([list(item) for item in written]),
                "quarantine": {"total": sum(reasons_count.values()), "by_reason": dict(sorted(reasons_count.items()))},
                "records_in": records_in,
                "predicted": dict(sorted(predicted.items())),
                "inputs_file": inputs_file,
            },
            written=beam.pvalue.AsSingleton(
                tuple(written) | "AllWritten" >> beam.Flatten() | "WrittenList" >> beam.combiners.ToList()
            ),
            reasons_count=beam.pvalue.AsSingleton(transforms.count_by_reason(quarantined)),
            records_in=beam.pvalue.AsSingleton(records_in),
            predicted=beam.pvalue.AsSingleton(predicted),
            inputs_file=beam.pvalue.AsSingleton(inputs_path),
            raw_rows=beam.pvalue.AsSingleton(raw_rows),
            scored_rows=beam.pvalue.AsSingleton(scored_rows),
            corpus=beam.pvalue.AsSingleton(corpus),
            repaired=beam.pvalue.AsSingleton(repaired),
        )
        | "WriteSummary" >> beam.Map(lambda summary: common.write_json(common.join(out, RUN_SUMMARY_FILE), summary))
    )


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


def _drift_html(drift: dict[str, Any]) -> str:
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


def _write_inputs(inputs: list[tuple[str, str, int]], path: str) -> tuple[str, int]:
    with FileSystems.create(path) as handle:
        handle.write("".join(f"{p}\t{sha}\t{size}\n" for p, sha, size in sorted(inputs)).encode("utf-8"))
    return path, len(inputs)


def write_manifest(args, beam_args, info, scored_at, seconds) -> dict[str, Any]:
    out = args.output_dir
    summary_path = common.join(out, RUN_SUMMARY_FILE)
    summary = common.read_json(summary_path)
    FileSystems.delete([summary_path])
    files = [tuple(item) for item in summary["written"]] + [tuple(summary["inputs_file"])]
    outputs = common.describe_outputs(out, files)
    scored = sum(v["records"] for k, v in outputs.items() if k.startswith(names.SCORED_DIR + "/"))
    quarantined = summary["quarantine"]["total"]
    manifest = {
        "kind": "scored",
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
    options = vars(args)
    reports = [
        validation.evaluate(
            validation.load_suite("raw_rows", options),
            summary["validation_rows"]["raw_rows"],
            {"quarantine_rate": quarantined / records_in, "duplicate_rate": 0.0},
        ),
        validation.evaluate(
            validation.load_suite("scored_output", options),
            summary["validation_rows"]["scored_output"],
            {"quarantine_rate": quarantined / records_in, "oov_rate": summary["corpus"]["oov_rate"]},
        ),
    ]
    validation.write_report(
        out, f"Scoring validation: {args.input}", reports, [("Drift against training data", _drift_html(drift))]
    )
    manifest["drift"] = drift
    manifest["validation"] = {
        "success": all(r["success"] for r in reports),
        "critical_failures": [
            f"{e['type']}({e['column']}): {e['observed']}" for r in reports for e in r["critical_failures"]
        ],
        "warnings": [f"{e['type']}({e['column']}): {e['observed']}" for r in reports for e in r["warnings"]],
        "report": validation.VALIDATION_HTML,
    }
    common.write_json(common.join(out, names.MANIFEST_FILE), manifest)
    manifest["_reports"] = reports
    return manifest


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args, beam_args = build_parser().parse_known_args(argv)
    common.setup_logging()
    if args.batch_size < 1 or args.rows_per_file < 1 or args.max_chars < 1:
        raise UserError("--batch_size, --rows_per_file and --max_chars must be >= 1")
    try:
        arrow.scored_schema([c.strip() for c in args.passthrough_columns.split(",") if c.strip()])
    except ValueError as error:
        raise UserError(f"--passthrough_columns: {error}") from None
    info = load_model_info(args.model_dir)
    info["_blessed"] = check_blessing(args.model_dir, info, args.allow_unblessed)
    sources.resolve_input_pattern(args.input, args.input_format)  # fail fast on a bad path
    common.prepare_output_dir(args.output_dir, args.overwrite)
    scored_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    LOGGER.info("scoring %s (%s) with %s -> %s", args.input, args.input_format, info["model_version"], args.output_dir)
    started = time.monotonic()
    with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
        build_pipeline(pipeline, args, info, scored_at)
    manifest = write_manifest(args, beam_args, info, scored_at, time.monotonic() - started)
    reports = manifest.pop("_reports")
    counts = manifest["counts"]
    print(
        f"scoring finished in {manifest['run']['seconds']} s: {counts['records_in']} records in = "
        f"{counts['scored']} scored + {counts['quarantined']} quarantined; predicted {manifest['predicted']}; "
        f"quarantine {manifest['quarantine']['by_reason']} -> {args.output_dir}",
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
    if not counts["balanced"]:
        raise UserError("records in != scored + quarantined; see manifest.json counts")
    validation.log_warnings(reports)
    validation.raise_on_critical(reports, common.join(args.output_dir, validation.VALIDATION_HTML))
    return manifest


def main() -> None:
    sys.exit(common.main_with_user_errors(run))


if __name__ == "__main__":
    main()
