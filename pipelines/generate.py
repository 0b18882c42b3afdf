"""Generation pipeline: prompts in any input format -> generated text in Parquet, with a language model.

    python -m pipelines.generate --input prompts.jsonl --input_format jsonl --text_column prompt \\
        --model_dir models/shakespeare --output_dir data/generated/shakespeare \\
        --max_new_tokens 200 --temperature 0.8 --top_k 40 --seed 1

Applies the ``generate`` signature of ``MODEL_DIR/export`` (raw prompt strings in; the
model cleans and tokenizes them exactly as in training) with Beam's RunInference.
Each row is sampled with its own seed, derived from --seed and the row's id, so a
rerun writes the same text whatever the batching. Writes to --output_dir:

* ``generated/part-SSSSS-of-NNNNN.parquet``: one row per prompt, Arrow schema
  `schemas.arrow.GENERATED_FIELDS` (id, source, prompt, generated_text, num_tokens,
  log_prob, prompt_tokens, prompt_oov, seed, sampling settings, model_version,
  generated_at) plus pass-through columns;
* ``quarantine/part-*.jsonl``: prompts that could not be used, with reasons (empty,
  too long, undecodable, nothing but unknown tokens);
* ``inputs.tsv``, ``validation.html``/``.json`` and ``manifest.json`` (counts: in =
  generated + quarantined).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
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
from schemas import arrow, names, reasons

LOGGER = logging.getLogger("lstm_pipeline")
GENERATE_OUTPUTS = ("text", "num_tokens", "log_prob", "prompt_tokens", "prompt_oov")
SUITE = "generated_output"
RAW_SUITE = "raw_text_rows"  # prompts carry no labels
DEFAULT_MAX_PROMPT_CHARS = 20_000


def row_seed(base_seed: int, record_id: str) -> int:
    """A row's sampling seed: a pure function of --seed and the row id (non-negative int64)."""
    digest = hashlib.sha256(f"{base_seed}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _seeds_of(examples) -> dict[str, Any]:
    """Keyed examples (prompt, seed) -> the signature's per-row `seed` argument."""
    import numpy as np

    return {"seed": np.array([seed for _, seed in examples], dtype=np.int64)}


class _ToGeneratedRow(beam.DoFn):
    """(record without text, PredictionResult) -> (id, generated row), or tagged ``quarantine``."""

    def __init__(self, settings: dict[str, Any], model_version: str, generated_at, passthrough):
        self.settings = settings
        self.model_version = model_version
        self.generated_at = generated_at
        self.passthrough = tuple(passthrough)

    def process(self, item):
        record, result = item
        prompt, seed = result.example
        out = result.inference
        failure = None
        if out["prompt_tokens"] == 0:
            failure = (reasons.EMPTY_AFTER_CLEANING, "the prompt has no tokens after cleaning")
        elif out["prompt_oov"] == out["prompt_tokens"]:
            failure = (
                reasons.PROMPT_OUT_OF_VOCABULARY,
                f"all {out['prompt_tokens']} prompt tokens are unknown to the model's vocabulary",
            )
        if failure:
            reason, detail = failure
            Metrics.counter("quarantine", reason).inc()
            yield beam.pvalue.TaggedOutput(
                QUARANTINE_TAG, common.quarantine({**record, "text": prompt}, "generate", reason, detail)
            )
            return
        row = {
            "id": record["id"],
            "source": record["source"],
            "prompt": prompt,
            "generated_text": out["text"],
            "num_tokens": out["num_tokens"],
            "log_prob": out["log_prob"],
            "prompt_tokens": out["prompt_tokens"],
            "prompt_oov": out["prompt_oov"],
            "seed": seed,
            **self.settings,
            "model_version": self.model_version,
            "generated_at": self.generated_at,
        }
        yield record["id"], {**row, **passthrough_values(record, self.passthrough)}


class GenerationStatsFn(beam.CombineFn):
    """(id, generated row) -> {"rows", "tokens", "prompt_tokens", "prompt_oov", "oov_rate", "stopped_early"}."""

    def create_accumulator(self):
        return {"rows": 0, "tokens": 0, "prompt_tokens": 0, "prompt_oov": 0, "stopped_early": 0}

    def add_input(self, accumulator, item):
        row = item[1]
        accumulator["rows"] += 1
        accumulator["tokens"] += row["num_tokens"]
        accumulator["prompt_tokens"] += row["prompt_tokens"]
        accumulator["prompt_oov"] += row["prompt_oov"]
        accumulator["stopped_early"] += int(row["num_tokens"] < row["max_new_tokens"])
        return accumulator

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for accumulator in accumulators:
            for key in merged:
                merged[key] += accumulator[key]
        return merged

    def extract_output(self, accumulator):
        prompt_tokens = accumulator["prompt_tokens"]
        return {**accumulator, "oov_rate": accumulator["prompt_oov"] / prompt_tokens if prompt_tokens else 0.0}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.generate",
        description="Generate text from prompts with an exported LSTM language model (RunInference) into Parquet.",
        epilog="Unrecognised flags go to Beam's PipelineOptions (e.g. --runner DataflowRunner).",
    )
    add_bulk_flags(parser, verb="Generate", what="prompts", input_format="lines", text_column="prompt")
    parser.add_argument(
        "--max_prompt_chars",
        type=int,
        default=DEFAULT_MAX_PROMPT_CHARS,
        help="Quarantine longer prompts as text_too_long (default: %(default)s).",
    )
    sampling = parser.add_argument_group("sampling (the same for every prompt; the seed differs per row)")
    sampling.add_argument("--max_new_tokens", type=int, default=200, help="Tokens to generate (default: %(default)s).")
    sampling.add_argument(
        "--temperature", type=float, default=0.8, help="> 0; lower is more conservative (default: %(default)s)."
    )
    sampling.add_argument(
        "--top_k", type=int, default=0, help="Sample from the k likeliest tokens; 0 = off, 1 = greedy."
    )
    sampling.add_argument(
        "--top_p", type=float, default=1.0, help="Nucleus sampling: smallest set reaching p, in (0, 1]; 1 = off."
    )
    sampling.add_argument("--stop", default="", help="Cut each text before the first occurrence of this string.")
    sampling.add_argument("--seed", type=int, default=0, help="Base seed; row seeds derive from it and the row id.")
    parser.add_argument(
        "--batch_size", type=int, default=64, help="Largest RunInference batch, in prompts (default: %(default)s)."
    )
    parser.add_argument(
        "--rows_per_file", type=int, default=100_000, help="Rows per Parquet file (default: %(default)s)."
    )
    parser.add_argument(
        "--max_quarantine_rate",
        type=float,
        default=0.05,
        help="Critical: fail the run above this share of quarantined prompts (default: %(default)s).",
    )
    parser.add_argument(
        "--max_oov_rate", type=float, default=0.1, help="Warn above this prompt OOV rate (default: %(default)s)."
    )
    cloud.add_flags(parser)
    return parser


def validate_args(args: argparse.Namespace) -> None:
    if args.temperature <= 0:
        raise UserError(f"--temperature must be > 0, got {args.temperature} (use --top_k 1 for greedy decoding)")
    if not 0.0 < args.top_p <= 1.0:
        raise UserError(f"--top_p must be in (0, 1], got {args.top_p}")
    if args.top_k < 0:
        raise UserError(f"--top_k must be >= 0 (0 = off), got {args.top_k}")
    if args.max_new_tokens < 1:
        raise UserError(f"--max_new_tokens must be >= 1, got {args.max_new_tokens}")
    for flag in ("batch_size", "rows_per_file", "max_prompt_chars"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    for flag in ("max_quarantine_rate", "max_oov_rate"):
        if not 0.0 <= getattr(args, flag) <= 1.0:
            raise UserError(f"--{flag} must be in [0, 1], got {getattr(args, flag)}")
    common.check_encodings(args)


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "max_new_tokens": args.max_new_tokens,
    }


def build_pipeline(pipeline: beam.Pipeline, args: argparse.Namespace, info: dict[str, Any], generated_at):
    out = args.output_dir
    columns = sources.ColumnNames(args.text_column, "label", args.id_column, "split")
    passthrough = [c.strip() for c in args.passthrough_columns.split(",") if c.strip()]
    schema = arrow.with_passthrough(arrow.GENERATED_FIELDS, passthrough)
    export_dir = common.join(args.model_dir.rstrip("/"), names.MODEL_EXPORT_DIR)
    read = pipeline | "Read" >> sources.ReadRawRecords(args.input, args.input_format, columns, encoding=args.encoding)
    checked = read["records"] | "CheckPrompts" >> transforms.CheckRows(
        args.max_prompt_chars,
        require_label=False,
        encoding=args.encoding,
        check_label=False,
        fallback_encoding=args.fallback_encoding,
    )
    handler = KeyedModelHandler(
        SignatureModelHandler(
            export_dir,
            names.GENERATE_SIGNATURE,
            GENERATE_OUTPUTS,
            input_name="prompt",
            arguments={
                "max_new_tokens": _typed(args.max_new_tokens, "int32"),
                "temperature": _typed(args.temperature, "float32"),
                "top_k": _typed(args.top_k, "int32"),
                "top_p": _typed(args.top_p, "float32"),
                "stop": args.stop,
            },
            row_arguments=_seeds_of,
            # Full batches: a generate call runs max_new_tokens sequential steps whose cost barely depends
            # on the batch size, so Beam's adaptive batching from 1 would multiply the calls (measured: 186
            # calls of 5.5 prompts instead of 16 of 64, 3x the model time).
            max_batch_size=args.batch_size,
            min_batch_size=args.batch_size,
            bucket_size=0,
            progress_name="generated",
            large_model=args.large_model,
        )
    )
    base_seed = args.seed
    generated = (
        checked.records
        | "KeyByRecord"
        >> beam.Map(lambda r: ({k: v for k, v in r.items() if k != "text"}, (r["text"], row_seed(base_seed, r["id"]))))
        | "RunInference" >> RunInference(handler)
        | "ToRow"
        >> beam.ParDo(
            _ToGeneratedRow(settings_of(args), info["model_version"], generated_at, passthrough)
        ).with_outputs(QUARANTINE_TAG, main="rows")
    )
    written = [
        generated.rows
        | "WriteParquet"
        >> sinks.WriteSortedShards(
            common.join(out, names.GENERATED_DIR, "part"),
            ".parquet",
            file_format=sinks.FORMAT_PARQUET,
            records_per_shard=args.rows_per_file,
            schema=schema,
        )
    ]
    quarantined = (read[QUARANTINE_TAG], checked[QUARANTINE_TAG], generated[QUARANTINE_TAG]) | "AllQuarantine" >> (
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
    generated_rows = (
        generated.rows
        | "GeneratedRowFeatures" >> beam.Map(lambda kv: {k: kv[1][k] for k in ("id", "generated_text", "num_tokens")})
        | "ValidateGeneratedRows" >> validation.ValidateRows(validation.load_suite(SUITE, options))
    )
    return pipeline | "WriteRunSummary" >> runs.WriteRunSummary(
        out,
        written=runs.collect_written("All", written),
        quarantine=transforms.count_by_reason(quarantined) | "QuarantineSummary" >> beam.Map(runs.quarantine_summary),
        records_in=runs.records_in(read),
        inputs_file=read[common.INPUTS_TAG] | "WriteInputList" >> runs.WriteInputList(out),
        raw_rows=raw_rows,
        generated_rows=generated_rows,
        stats=generated.rows | "GenerationStats" >> beam.CombineGlobally(GenerationStatsFn()),
        repaired=transforms.count_repairs(checked.records)
        | "SortRepairs" >> beam.Map(lambda r: dict(sorted(r.items()))),
    )


def suite_options(args: argparse.Namespace) -> dict[str, Any]:
    """What "$name" thresholds of the suites refer to (prompts have no labels and are not deduplicated)."""
    return {**vars(args), "labels": [], "max_chars": args.max_prompt_chars, "max_duplicate_rate": 1.0}


def _typed(value, dtype: str):
    import numpy as np

    return np.array(value, dtype=dtype)


def write_manifest(args, beam_args, info, generated_at, seconds) -> dict[str, Any]:
    out = args.output_dir
    summary = runs.read_summary(out)
    files = [tuple(item) for item in summary["written"]] + [tuple(summary["inputs_file"])]
    outputs = common.describe_outputs(out, files)
    generated = sum(v["records"] for k, v in outputs.items() if k.startswith(names.GENERATED_DIR + "/"))
    quarantined = summary["quarantine"]["total"]
    records_in = max(summary["records_in"], 1)
    options = suite_options(args)
    reports = [
        validation.evaluate(
            validation.load_suite(RAW_SUITE, options),
            summary["raw_rows"],
            {"quarantine_rate": quarantined / records_in, "duplicate_rate": 0.0},
        ),
        validation.evaluate(
            validation.load_suite(SUITE, options),
            summary["generated_rows"],
            {"quarantine_rate": quarantined / records_in, "prompt_oov_rate": summary["stats"]["oov_rate"]},
        ),
    ]
    validation.write_report(out, f"Generation validation: {args.input}", reports)
    counts = {
        "records_in": summary["records_in"],
        "generated": generated,
        "quarantined": quarantined,
        "balanced": summary["records_in"] == generated + quarantined,
    }
    manifest = {
        "kind": "generated",
        "task": names.TASK_LANGUAGE_MODEL,
        "model": {
            "model_dir": args.model_dir,
            "model_version": info["model_version"],
            "model_info_sha256": info["_model_info_sha256"],
            "blessed": info.get("_blessed"),
            "dataset_fingerprint": info.get("dataset_fingerprint"),
        },
        "generated_at": generated_at.isoformat(),
        "sampling": {**settings_of(args), "stop": args.stop, "seed": args.seed},
        "counts": counts,
        "generation": summary["stats"],
        "quarantine": summary["quarantine"],
        "repaired": summary["repaired"],
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
    validate_args(args)
    args.output_dir = cloud.expand_date(args.output_dir)
    dry_run = cloud.check_paths(
        beam_args, {"--input": args.input, "--output_dir": args.output_dir, "--model_dir": args.model_dir}
    )
    info = load_model_info(args.model_dir)
    if info["task"] != names.TASK_LANGUAGE_MODEL:
        raise UserError(f"--model_dir {args.model_dir} is a {info['task']} model; generation needs a language model")
    try:
        arrow.with_passthrough(
            arrow.GENERATED_FIELDS, [c.strip() for c in args.passthrough_columns.split(",") if c.strip()]
        )
    except ValueError as error:
        raise UserError(f"--passthrough_columns: {error}") from None
    info["_blessed"] = check_blessing(args.model_dir, info, args.allow_unblessed)
    if not dry_run:
        sources.resolve_input_pattern(args.input, args.input_format)  # fail fast on a bad path
        common.prepare_output_dir(args.output_dir, args.overwrite)
    generated_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    LOGGER.info(
        "generating from %s (%s) with %s -> %s", args.input, args.input_format, info["model_version"], args.output_dir
    )
    manifest, reports = cloud.run_pipeline(
        "generate",
        args,
        beam_args,
        PipelineOptions(beam_args),
        lambda pipeline: build_pipeline(pipeline, args, info, generated_at),
        functools.partial(write_manifest, args, beam_args, info, generated_at),
    )
    if dry_run:
        return manifest
    counts, stats = manifest["counts"], manifest["generation"]
    print(
        f"generation finished in {manifest['run']['seconds']} s: {counts['records_in']} prompts in = "
        f"{counts['generated']} generated + {counts['quarantined']} quarantined; {stats['tokens']} tokens generated "
        f"({stats['stopped_early']} rows stopped at [EOS]); quarantine {manifest['quarantine']['by_reason']} "
        f"-> {args.output_dir}",
        flush=True,
    )
    cloud.finish(args.output_dir, manifest, reports)
    return manifest


def main() -> None:
    sys.exit(common.main_with_user_errors(run))


if __name__ == "__main__":
    main()
