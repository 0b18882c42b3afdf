"""Translation pipeline: source sentences in any input format -> translations in Parquet, with a seq2seq model.

    python -m pipelines.translate --input ../shared/data/multi30k/test_2016_flickr.de.gz --input_format lines \\
        --model_dir models/multi30k_de_en --output_dir data/translated/multi30k_test

Applies the ``translate`` (beam search) or ``translate_greedy`` signature of ``MODEL_DIR/export``
(raw sentences in; the model cleans, tokenizes, decodes and detokenizes exactly as in training)
with Beam's RunInference; a batch is cut into model calls of sentences of similar length, so
padding costs little. Decoding is deterministic: a rerun writes the same translations. Writes to
--output_dir:

* ``translated/part-SSSSS-of-NNNNN.parquet``: one row per sentence, Arrow schema
  `schemas.arrow.TRANSLATED_FIELDS` (id, source, source_text, translation, log_prob, num_tokens,
  source_tokens, source_oov, decoding, beam_width, length_penalty, model_version, translated_at)
  plus pass-through columns;
* ``quarantine/part-*.jsonl``: sentences that could not be translated, with reasons (empty, too
  long, undecodable, nothing left after cleaning, every token unknown);
* ``inputs.tsv``, ``validation.html``/``.json`` (with drift against the training data) and
  ``manifest.json`` (counts: in = translated + quarantined).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import logging
import sys
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import cloud, common, runs, sinks, sources, transforms, validation
from pipelines.common import QUARANTINE_TAG, UserError
from pipelines.inference import (
    SignatureModelHandler,
    add_bulk_flags,
    check_blessing,
    load_model_info,
    passthrough_values,
)
from pipelines.score import CorpusStatsFn, add_drift_flags, compute_drift, drift_html
from schemas import arrow, names, reasons

LOGGER = logging.getLogger("lstm_pipeline")
TRANSLATE_OUTPUTS = ("translation", "log_prob", "num_tokens", "source_tokens", "source_oov")
GREEDY_SIGNATURE = names.TRANSLATE_SIGNATURE + "_greedy"
SUITE = "translated_output"
RAW_SUITE = "raw_text_rows"
DEFAULT_MAX_SOURCE_CHARS = 1_000
# Model calls per RunInference batch, a fixed size (Beam's BatchElements would otherwise shrink batches to
# ~10 s of work, 2-3 calls of beam search). The batch is sorted by length before it is cut into calls, and
# beam search runs each call until its longest budget (a * source tokens + b) is spent: the wider the
# window, the closer the calls come to a globally sorted input. Measured in docs/performance.md
# ("Translation"); 2,048 captions are ~0.2 MB of text.
CALLS_PER_BATCH = 32


class _ToTranslatedRow(beam.DoFn):
    """(record without text, PredictionResult) -> (id, translated row), or tagged ``quarantine``."""

    def __init__(self, settings: dict[str, Any], model_version: str, translated_at, passthrough):
        self.settings = settings
        self.model_version = model_version
        self.translated_at = translated_at
        self.passthrough = tuple(passthrough)

    def process(self, item):
        record, result = item
        source_text = result.example
        out = result.inference
        failure = None
        if out["source_tokens"] == 0:
            failure = (reasons.EMPTY_AFTER_CLEANING, "the sentence has no tokens after cleaning")
        elif out["source_oov"] == out["source_tokens"]:
            failure = (
                reasons.PROMPT_OUT_OF_VOCABULARY,
                f"all {out['source_tokens']} source tokens are unknown to the model's vocabulary",
            )
        if failure:
            reason, detail = failure
            Metrics.counter("quarantine", reason).inc()
            yield beam.pvalue.TaggedOutput(
                QUARANTINE_TAG, common.quarantine({**record, "text": source_text}, "translate", reason, detail)
            )
            return
        row = {
            "id": record["id"],
            "source": record["source"],
            "source_text": source_text,
            "translation": out["translation"],
            "log_prob": out["log_prob"],
            "num_tokens": out["num_tokens"],
            "source_tokens": out["source_tokens"],
            "source_oov": out["source_oov"],
            **self.settings,
            "model_version": self.model_version,
            "translated_at": self.translated_at,
        }
        yield record["id"], {**row, **passthrough_values(record, self.passthrough)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.translate",
        description="Translate sentences with an exported seq2seq LSTM model (RunInference) into Parquet.",
        epilog="Unrecognised flags go to Beam's PipelineOptions (e.g. --runner DataflowRunner).",
    )
    add_bulk_flags(parser, verb="Translate", what="source sentences", input_format="lines", text_column="source")
    parser.add_argument(
        "--max_source_chars",
        type=int,
        default=DEFAULT_MAX_SOURCE_CHARS,
        help="Quarantine longer sentences as text_too_long (default: %(default)s).",
    )
    decoding = parser.add_argument_group("decoding (the beam width and length penalty are the exported model's)")
    decoding.add_argument(
        "--decoding",
        default="beam",
        choices=("beam", "greedy"),
        help="beam: the model's beam search (model_info.json decoding.beam_width); greedy: width 1, faster.",
    )
    decoding.add_argument(
        "--max_length_a",
        type=float,
        default=None,
        help="At most a * source tokens + b target tokens per sentence (default: the model's, 1.5).",
    )
    decoding.add_argument(
        "--max_length_b", type=int, default=None, help="See --max_length_a (default: the model's, 10)."
    )
    parser.add_argument(
        "--batch_size",
        type=int,
        default=64,
        help=f"Sentences per model call; a RunInference batch holds up to {CALLS_PER_BATCH} calls, sorted by length "
        "(default: %(default)s).",
    )
    parser.add_argument(
        "--rows_per_file", type=int, default=100_000, help="Rows per Parquet file (default: %(default)s)."
    )
    checks = parser.add_argument_group("validation and drift thresholds")
    checks.add_argument(
        "--max_quarantine_rate",
        type=float,
        default=0.05,
        help="Critical: fail the run above this share of quarantined sentences (default: %(default)s).",
    )
    checks.add_argument(
        "--max_oov_rate", type=float, default=0.1, help="Warn above this source OOV rate (default: %(default)s)."
    )
    add_drift_flags(checks)
    cloud.add_flags(parser)
    return parser


def validate_args(args: argparse.Namespace, info: dict[str, Any]) -> None:
    defaults = info.get("decoding") or {}
    if args.max_length_a is None:
        args.max_length_a = float(defaults.get("max_length_a", 1.5))
    if args.max_length_b is None:
        args.max_length_b = int(defaults.get("max_length_b", 10))
    if args.max_length_a < 0 or args.max_length_b < 0 or args.max_length_a + args.max_length_b <= 0:
        raise UserError(
            f"--max_length_a {args.max_length_a} / --max_length_b {args.max_length_b} must be >= 0 and not both 0"
        )
    for flag in ("batch_size", "rows_per_file", "max_source_chars"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    for flag in ("max_quarantine_rate", "max_oov_rate"):
        if not 0.0 <= getattr(args, flag) <= 1.0:
            raise UserError(f"--{flag} must be in [0, 1], got {getattr(args, flag)}")
    common.check_encodings(args)


def settings_of(args: argparse.Namespace, info: dict[str, Any]) -> dict[str, Any]:
    """The decoding columns of every row."""
    decoding = info.get("decoding") or {}
    beam_search = args.decoding == "beam"
    return {
        "decoding": args.decoding,
        "beam_width": int(decoding.get("beam_width", 1)) if beam_search else 1,
        "length_penalty": float(decoding.get("length_penalty", 0.0)) if beam_search else 0.0,
    }


def _typed(value, dtype: str):
    import numpy as np

    return np.array(value, dtype=dtype)


def _row_features(item) -> dict[str, Any]:
    row = item[1]
    return {
        "id": row["id"],
        "translation": row["translation"],
        "num_tokens": row["num_tokens"],
        "length_ratio": row["num_tokens"] / row["source_tokens"] if row["source_tokens"] else None,
    }


def build_pipeline(pipeline: beam.Pipeline, args: argparse.Namespace, info: dict[str, Any], translated_at):
    out = args.output_dir
    columns = sources.ColumnNames(args.text_column, "label", args.id_column, "split")
    passthrough = [c.strip() for c in args.passthrough_columns.split(",") if c.strip()]
    schema = arrow.with_passthrough(arrow.TRANSLATED_FIELDS, passthrough)
    export_dir = common.join(args.model_dir.rstrip("/"), names.MODEL_EXPORT_DIR)
    read = pipeline | "Read" >> sources.ReadRawRecords(args.input, args.input_format, columns, encoding=args.encoding)
    checked = read["records"] | "CheckSentences" >> transforms.CheckRows(
        args.max_source_chars,
        require_label=False,
        encoding=args.encoding,
        check_label=False,
        fallback_encoding=args.fallback_encoding,
    )
    handler = KeyedModelHandler(
        SignatureModelHandler(
            export_dir,
            names.TRANSLATE_SIGNATURE if args.decoding == "beam" else GREEDY_SIGNATURE,
            TRANSLATE_OUTPUTS,
            input_name="source",
            arguments={
                "max_length_a": _typed(args.max_length_a, "float32"),
                "max_length_b": _typed(args.max_length_b, "int32"),
            },
            # A call decodes step by step until its longest sentence ends: calls of sentences of similar
            # length (bucket_size) waste few steps; fixed batches of CALLS_PER_BATCH calls sort a wide window.
            min_batch_size=args.batch_size * CALLS_PER_BATCH,
            max_batch_size=args.batch_size * CALLS_PER_BATCH,
            bucket_size=args.batch_size,
            progress_name="translated",
            large_model=args.large_model,
        )
    )
    translated = (
        checked.records
        | "KeyByRecord" >> beam.Map(lambda r: ({k: v for k, v in r.items() if k != "text"}, r["text"]))
        | "RunInference" >> RunInference(handler)
        | "ToRow"
        >> beam.ParDo(
            _ToTranslatedRow(settings_of(args, info), info["model_version"], translated_at, passthrough)
        ).with_outputs(QUARANTINE_TAG, main="rows")
    )
    written = [
        translated.rows
        | "WriteParquet"
        >> sinks.WriteSortedShards(
            common.join(out, names.TRANSLATED_DIR, "part"),
            ".parquet",
            file_format=sinks.FORMAT_PARQUET,
            records_per_shard=args.rows_per_file,
            schema=schema,
        )
    ]
    quarantined = (read[QUARANTINE_TAG], checked[QUARANTINE_TAG], translated[QUARANTINE_TAG]) | "AllQuarantine" >> (
        beam.Flatten()
    )
    written.append(quarantined | "Quarantine" >> sinks.WriteQuarantine(out))
    options = suite_options(args)
    raw_rows = (
        read["records"]
        | "RawRowFeatures"
        >> beam.Map(validation.raw_row_features, encoding=args.encoding, fallback_encoding=args.fallback_encoding)
        | "ValidateRawRows" >> validation.ValidateRows(validation.load_suite(RAW_SUITE, options))
    )
    translated_rows = (
        translated.rows
        | "TranslatedRowFeatures" >> beam.Map(_row_features)
        | "ValidateTranslatedRows" >> validation.ValidateRows(validation.load_suite(SUITE, options))
    )
    # The source side, measured as scoring measures its texts, for the drift checks.
    corpus = (
        translated.rows
        | "SourceSide"
        >> beam.Map(lambda kv: (kv[0], {"num_tokens": kv[1]["source_tokens"], "num_oov": kv[1]["source_oov"]}))
        | "CorpusStats" >> beam.CombineGlobally(CorpusStatsFn())
    )
    return pipeline | "WriteRunSummary" >> runs.WriteRunSummary(
        out,
        written=runs.collect_written("All", written),
        quarantine=transforms.count_by_reason(quarantined) | "QuarantineSummary" >> beam.Map(runs.quarantine_summary),
        records_in=runs.records_in(read),
        inputs_file=read[common.INPUTS_TAG] | "WriteInputList" >> runs.WriteInputList(out),
        raw_rows=raw_rows,
        translated_rows=translated_rows,
        corpus=corpus,
        target_tokens=translated.rows
        | "TargetTokens" >> beam.Map(lambda kv: kv[1]["num_tokens"])
        | "SumTargetTokens" >> beam.CombineGlobally(sum),
        repaired=transforms.count_repairs(checked.records)
        | "SortRepairs" >> beam.Map(lambda r: dict(sorted(r.items()))),
    )


def suite_options(args: argparse.Namespace) -> dict[str, Any]:
    """What "$name" thresholds of the suites refer to (sentences have no labels and are not deduplicated)."""
    return {**vars(args), "labels": [], "max_chars": args.max_source_chars, "max_duplicate_rate": 1.0}


def write_manifest(args, beam_args, info, translated_at, seconds) -> dict[str, Any]:
    out = args.output_dir
    summary = runs.read_summary(out)
    files = [tuple(item) for item in summary["written"]] + [tuple(summary["inputs_file"])]
    outputs = common.describe_outputs(out, files)
    translated = sum(v["records"] for k, v in outputs.items() if k.startswith(names.TRANSLATED_DIR + "/"))
    quarantined = summary["quarantine"]["total"]
    records_in = max(summary["records_in"], 1)
    corpus = summary["corpus"]
    options = suite_options(args)
    drift = compute_drift(info, corpus, quarantined / records_in, args)
    reports = [
        validation.evaluate(
            validation.load_suite(RAW_SUITE, options),
            summary["raw_rows"],
            {"quarantine_rate": quarantined / records_in, "duplicate_rate": 0.0},
        ),
        validation.evaluate(
            validation.load_suite(SUITE, options),
            summary["translated_rows"],
            {"quarantine_rate": quarantined / records_in, "source_oov_rate": corpus["oov_rate"]},
        ),
    ]
    validation.write_report(
        out, f"Translation validation: {args.input}", reports, [("Drift against training data", drift_html(drift))]
    )
    counts = {
        "records_in": summary["records_in"],
        "translated": translated,
        "quarantined": quarantined,
        "balanced": summary["records_in"] == translated + quarantined,
    }
    manifest = {
        "kind": "translated",
        "task": names.TASK_TRANSLATION,
        "model": {
            "model_dir": args.model_dir,
            "model_version": info["model_version"],
            "model_info_sha256": info["_model_info_sha256"],
            "blessed": info.get("_blessed"),
            "dataset_fingerprint": info.get("dataset_fingerprint"),
            "source_language": info.get("source_language"),
            "target_language": info.get("target_language"),
        },
        "translated_at": translated_at.isoformat(),
        "decoding": {**settings_of(args, info), "max_length_a": args.max_length_a, "max_length_b": args.max_length_b},
        "counts": counts,
        "translation": {
            "source_tokens": corpus["tokens"],
            "source_oov_rate": corpus["oov_rate"],
            "target_tokens": summary["target_tokens"],
        },
        "quarantine": summary["quarantine"],
        "repaired": summary["repaired"],
        "drift": drift,
        "options": {k: v for k, v in sorted(vars(args).items())},
        "beam_args": beam_args,
        "inputs_sha256": outputs[names.INPUTS_FILE]["sha256"],
        "outputs": outputs,
        "validation": runs.validation_block(reports),
        "run": {"seconds": round(seconds, 1)},
    }
    common.write_json(common.join(out, names.MANIFEST_FILE), manifest)
    manifest["_reports"] = reports
    return manifest


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args, beam_args = build_parser().parse_known_args(argv)
    common.setup_logging()
    args.output_dir = cloud.expand_date(args.output_dir)
    dry_run = cloud.check_paths(
        beam_args, {"--input": args.input, "--output_dir": args.output_dir, "--model_dir": args.model_dir}
    )
    info = load_model_info(args.model_dir)
    if info["task"] != names.TASK_TRANSLATION:
        raise UserError(
            f"--model_dir {args.model_dir} is a {info['task']} model; translation needs a translation model"
        )
    validate_args(args, info)
    try:
        arrow.with_passthrough(
            arrow.TRANSLATED_FIELDS, [c.strip() for c in args.passthrough_columns.split(",") if c.strip()]
        )
    except ValueError as error:
        raise UserError(f"--passthrough_columns: {error}") from None
    info["_blessed"] = check_blessing(args.model_dir, info, args.allow_unblessed)
    if not dry_run:
        sources.resolve_input_pattern(args.input, args.input_format)  # fail fast on a bad path
        common.prepare_output_dir(args.output_dir, args.overwrite)
    translated_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    LOGGER.info(
        "translating %s (%s) with %s (%s) -> %s",
        args.input,
        args.input_format,
        info["model_version"],
        args.decoding,
        args.output_dir,
    )
    manifest, reports = cloud.run_pipeline(
        "translate",
        args,
        beam_args,
        PipelineOptions(beam_args),
        lambda pipeline: build_pipeline(pipeline, args, info, translated_at),
        functools.partial(write_manifest, args, beam_args, info, translated_at),
    )
    if dry_run:
        return manifest
    counts = manifest["counts"]
    for warning in manifest["drift"]["warnings"]:
        LOGGER.warning("drift: %s", warning)
    seconds = manifest["run"]["seconds"]
    print(
        f"translation finished in {seconds} s: {counts['records_in']} sentences in = {counts['translated']} "
        f"translated + {counts['quarantined']} quarantined ({counts['translated'] / max(seconds, 1e-9):.1f} "
        f"sentences/s, {manifest['decoding']['decoding']}); quarantine {manifest['quarantine']['by_reason']} "
        f"-> {args.output_dir}",
        flush=True,
    )
    cloud.finish(args.output_dir, manifest, reports)
    return manifest


def main() -> None:
    sys.exit(common.main_with_user_errors(run))


if __name__ == "__main__":
    main()
