"""Ingest pipeline: raw text -> cleaned, checked, deduplicated, split TFRecords + vocabulary.

    python -m pipelines.ingest --input ../shared/data/imdb/mini/aclImdb \\
        --input_format aclimdb --output_dir data/processed/imdb_mini

Writes to --output_dir:

* ``{train,validation,test,unsup}/data-SSSSS-of-NNNNN.tfrecord.gz``: GZIP TFRecords of
  tf.train.Example (see `schemas.tfrecord`), sorted by id inside each shard;
* ``vocab.tsv``: ``token<TAB>count`` per line, line number = id, from the training side;
* ``quarantine/part-*.jsonl``: every rejected record with its reason;
* ``inputs.tsv``: every raw input file with its sha256;
* ``manifest.json``: counts per split and label, quarantine counts by reason,
  vocabulary size, OOV rate and token-length percentiles per split, the options,
  checksums of all outputs, and ``records_in == records_out + quarantined``.

Beam options (``--runner``, ``--direct_num_workers``, ``--direct_running_mode``,
Dataflow's ``--project`` etc.) are passed through to PipelineOptions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import common, sinks, sources, spill, transforms, validation
from pipelines.common import QUARANTINE_TAG, UserError
from schemas import names, reasons
from schemas import tfrecord as tfrecord_schema

LOGGER = logging.getLogger("lstm_pipeline")
RUN_SUMMARY_FILE = "_run_summary.json"
PIPELINE_VERSION = "1"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.ingest",
        description="Raw text -> cleaned, validated, deduplicated TFRecords with a vocabulary and a manifest.",
        epilog="Unrecognised flags go to Beam's PipelineOptions (e.g. --runner DataflowRunner, "
        "--direct_num_workers 2 --direct_running_mode multi_processing).",
    )
    io_group = parser.add_argument_group("input and output")
    io_group.add_argument("--input", required=True, help="Folder, file or glob (local or gs://).")
    io_group.add_argument(
        "--input_format", default="aclimdb", choices=sources.FORMATS, help="Layout of --input (default: %(default)s)."
    )
    io_group.add_argument("--output_dir", required=True, help="Dataset directory to write (local or gs://).")
    io_group.add_argument("--overwrite", action="store_true", help="Replace a dataset already in --output_dir.")
    io_group.add_argument(
        "--text_column", default="text", help="Tabular inputs: column with the text (default: %(default)s)."
    )
    io_group.add_argument(
        "--label_column", default="label", help="Tabular inputs: column with the label (default: %(default)s)."
    )
    io_group.add_argument(
        "--id_column",
        default="id",
        help="Tabular inputs: column with a record id; FILE:ROW if absent (default: %(default)s).",
    )
    io_group.add_argument(
        "--split_column",
        default="split",
        help="Tabular inputs: column with train/test/validation/unsup (default: %(default)s).",
    )
    io_group.add_argument("--encoding", default="utf-8", help="Encoding of raw text bytes (default: %(default)s).")
    io_group.add_argument(
        "--fallback_encoding",
        default=None,
        help="Encoding tried when --encoding fails (e.g. cp1252); such records are kept and counted as repaired.",
    )

    clean_group = parser.add_argument_group("cleaning and checks")
    clean_group.add_argument(
        "--no_lowercase", dest="lowercase", action="store_false", help="Keep case (default: lowercase)."
    )
    clean_group.add_argument(
        "--max_chars",
        type=int,
        default=transforms.DEFAULT_MAX_CHARS,
        help="Quarantine texts longer than this many characters (default: %(default)s).",
    )

    split_group = parser.add_argument_group("splits and vocabulary")
    split_group.add_argument(
        "--validation_fraction",
        type=float,
        default=0.1,
        help="Share of train carved into validation by id hash (default: %(default)s).",
    )
    split_group.add_argument(
        "--test_fraction",
        type=float,
        default=0.2,
        help="Share of labelled records without a given split sent to test (default: %(default)s).",
    )
    split_group.add_argument(
        "--vocab_size",
        type=int,
        default=30_000,
        help="Vocabulary size including [PAD] and [UNK] (default: %(default)s).",
    )
    split_group.add_argument(
        "--min_count",
        type=int,
        default=2,
        help="Minimum training-side count of a vocabulary token (default: %(default)s).",
    )
    split_group.add_argument(
        "--vocab_splits",
        default="train,unsup",
        help="Splits counted for the vocabulary; never validation or test (default: %(default)s).",
    )
    split_group.add_argument(
        "--records_per_shard", type=int, default=10_000, help="TFRecord shard size in records (default: %(default)s)."
    )

    check_group = parser.add_argument_group("validation thresholds (Great Expectations suites in schemas/expectations)")
    check_group.add_argument(
        "--max_quarantine_rate",
        type=float,
        default=0.05,
        help="Critical: fail the run above this share of quarantined records (default: %(default)s).",
    )
    check_group.add_argument(
        "--max_duplicate_rate",
        type=float,
        default=0.2,
        help="Warn above this share of duplicate records (default: %(default)s).",
    )
    check_group.add_argument(
        "--max_oov_rate",
        type=float,
        default=0.1,
        help="Warn above this out-of-vocabulary rate in validation/test (default: %(default)s).",
    )
    check_group.add_argument(
        "--min_label_share",
        type=float,
        default=0.2,
        help="Warn if the train split's positive share is below this (default: %(default)s).",
    )
    check_group.add_argument(
        "--max_label_share",
        type=float,
        default=0.8,
        help="Warn if the train split's positive share is above this (default: %(default)s).",
    )
    return parser


def validate_args(args: argparse.Namespace) -> None:
    if not 0.0 <= args.validation_fraction < 1.0:
        raise UserError(f"--validation_fraction must be in [0, 1), got {args.validation_fraction}")
    if not 0.0 <= args.test_fraction < 1.0:
        raise UserError(f"--test_fraction must be in [0, 1), got {args.test_fraction}")
    if args.vocab_size <= len(names.RESERVED_TOKENS):
        raise UserError(f"--vocab_size must exceed {len(names.RESERVED_TOKENS)}, got {args.vocab_size}")
    if args.min_count < 1:
        raise UserError(f"--min_count must be >= 1, got {args.min_count}")
    if args.max_chars < 1:
        raise UserError(f"--max_chars must be >= 1, got {args.max_chars}")
    splits = [s.strip() for s in args.vocab_splits.split(",") if s.strip()]
    bad = [s for s in splits if s not in (names.SPLIT_TRAIN, names.SPLIT_UNSUP)]
    if bad or not splits:
        raise UserError(
            f"--vocab_splits may name train and unsup only (never validation/test), got {args.vocab_splits!r}"
        )
    args.vocab_splits = splits
    for flag in ("encoding", "fallback_encoding"):
        codec = getattr(args, flag)
        try:
            if codec is not None:
                "".encode(codec)
        except LookupError:
            raise UserError(f"--{flag} {codec!r} is not a known codec") from None
    for flag in ("max_quarantine_rate", "max_duplicate_rate", "max_oov_rate", "min_label_share", "max_label_share"):
        if not 0.0 <= getattr(args, flag) <= 1.0:
            raise UserError(f"--{flag} must be in [0, 1], got {getattr(args, flag)}")


def _example_of(record: dict[str, Any]) -> tuple[str, bytes]:
    # Sorted by a hash of the id: a fixed order (same bytes on every rerun) that
    # does not group labels together the way "train/neg/..." < "train/pos/..." would.
    order = hashlib.sha256(record["id"].encode("utf-8")).hexdigest()[:16] + record["id"]
    return order, tfrecord_schema.make_example(record["id"], record["token_ids"], record["label"])


def _write_vocabulary(vocabulary: list[tuple[str, int]], path: str) -> str:
    with FileSystems.create(path) as handle:
        handle.write("".join(f"{token}\t{count}\n" for token, count in vocabulary).encode("utf-8"))
    return path


def _write_inputs(inputs: list[tuple[str, str, int]], path: str) -> str:
    with FileSystems.create(path) as handle:
        handle.write("".join(f"{p}\t{sha}\t{size}\n" for p, sha, size in sorted(inputs)).encode("utf-8"))
    return path


def _summary(
    _, stats, reasons_count, records_in, written, vocabulary_size, input_files, repaired, raw_rows, cleaned_rows
):
    return {
        "repaired": dict(sorted(repaired.items())),
        "validation_rows": {"raw_rows": raw_rows, "cleaned_dataset": cleaned_rows},
        "splits": stats,
        "quarantine": {"total": sum(reasons_count.values()), "by_reason": dict(sorted(reasons_count.items()))},
        "records_in": records_in,
        "vocabulary_size": vocabulary_size,
        "input_files": input_files,
        "written": sorted([list(item) for item in written]),
    }


def _cleaned_row_features(record: dict[str, Any]) -> dict[str, Any]:
    label = record["label"]
    return {
        "id": record["id"],
        "num_tokens": len(record["token_ids"]),
        "label": None if label == names.UNLABELED else names.LABELS[label],
    }


def validate_run(
    args: argparse.Namespace, manifest: dict[str, Any], row_results: dict[str, Any]
) -> list[dict[str, Any]]:
    """Evaluate the raw-rows and cleaned-dataset suites; writes validation.json/html."""
    counts = manifest["counts"]
    by_reason = manifest["quarantine"]["by_reason"]
    duplicates = sum(
        by_reason.get(r, 0) for r in (reasons.DUPLICATE_ID, reasons.DUPLICATE_TEXT, reasons.DUPLICATE_OF_TEST)
    )
    records_in = max(counts["records_in"], 1)
    splits = manifest["splits"]
    train_labels = splits[names.SPLIT_TRAIN]["labels"]
    train_labelled = sum(v for k, v in train_labels.items() if k != "unlabeled")
    options = vars(args)
    raw_report = validation.evaluate(
        validation.load_suite("raw_rows", options),
        row_results["raw_rows"],
        {"quarantine_rate": counts["quarantined"] / records_in, "duplicate_rate": duplicates / records_in},
    )
    cleaned_report = validation.evaluate(
        validation.load_suite("cleaned_dataset", options),
        row_results["cleaned_dataset"],
        {
            "train_records": splits[names.SPLIT_TRAIN]["records"],
            "validation_records": splits[names.SPLIT_VALIDATION]["records"],
            "train_positive_share": train_labels.get(names.LABELS[1], 0) / train_labelled if train_labelled else None,
            "validation_oov_rate": splits[names.SPLIT_VALIDATION]["oov_rate"],
            "test_oov_rate": splits[names.SPLIT_TEST]["oov_rate"],
        },
    )
    reports = [raw_report, cleaned_report]
    validation.write_report(args.output_dir, f"Ingest validation: {args.input}", reports)
    return reports


def build_pipeline(pipeline: beam.Pipeline, args: argparse.Namespace) -> None:
    """Adds the ingest steps to `pipeline` (labelled, so Dataflow's graph reads like this)."""
    out = args.output_dir
    columns = sources.ColumnNames(args.text_column, args.label_column, args.id_column, args.split_column)
    read = pipeline | "Read" >> sources.ReadRawRecords(args.input, args.input_format, columns)
    checked = read["records"] | "CheckRows" >> transforms.CheckRows(
        args.max_chars, require_label=True, encoding=args.encoding, fallback_encoding=args.fallback_encoding
    )
    cleaned = checked.records | "CleanText" >> transforms.CleanText(args.lowercase)
    deduped = cleaned.records | "DropDuplicates" >> transforms.DropDuplicates(common.join(out, "dedupe"))
    validation_fraction, test_fraction = args.validation_fraction, args.test_fraction
    split = deduped["records"] | "AssignSplit" >> beam.Map(transforms.assign_split, validation_fraction, test_fraction)

    vocab_splits = set(args.vocab_splits)
    vocabulary = (
        split
        | "TrainingSide" >> beam.Filter(lambda r: r["split"] in vocab_splits)
        | "BuildVocabulary" >> transforms.BuildVocabulary(args.vocab_size, args.min_count, args.lowercase)
    )
    with_ids = (
        split
        # The records wait for the vocabulary on disk, not in the runner's memory.
        | "WaitForVocabulary" >> spill.SpillUntil(common.join(out, "vocabulary"), after=vocabulary)
        | "ToTokenIds" >> transforms.ToTokenIds(vocabulary, args.lowercase)
    )

    written = []
    by_split = with_ids | "BySplit" >> beam.Partition(lambda r, n: names.SPLITS.index(r["split"]), len(names.SPLITS))
    for split_name, records in zip(names.SPLITS, by_split, strict=True):
        written.append(
            records
            | f"Example[{split_name}]" >> beam.Map(_example_of)
            | f"Write[{split_name}]"
            >> sinks.WriteSortedShards(
                common.join(out, split_name, "data"), names.TFRECORD_SUFFIX, records_per_shard=args.records_per_shard
            )
        )

    quarantined = (
        read[QUARANTINE_TAG],
        checked[QUARANTINE_TAG],
        cleaned[QUARANTINE_TAG],
        deduped[QUARANTINE_TAG],
    ) | "AllQuarantine" >> beam.Flatten()
    written.append(quarantined | "Quarantine" >> sinks.WriteQuarantine(out))
    vocab_path = vocabulary | "WriteVocabulary" >> beam.Map(_write_vocabulary, common.join(out, names.VOCAB_FILE))
    inputs_path = (
        read[common.INPUTS_TAG]
        | "InputList" >> beam.combiners.ToList()
        | "WriteInputs" >> beam.Map(_write_inputs, common.join(out, names.INPUTS_FILE))
    )

    stats = with_ids | "DatasetStats" >> beam.CombineGlobally(transforms.DatasetStatsFn())
    options = vars(args)
    raw_rows = (
        read["records"]
        | "RawRowFeatures" >> beam.Map(validation.raw_row_features)
        | "ValidateRawRows" >> validation.ValidateRows(validation.load_suite("raw_rows", options))
    )
    cleaned_rows = (
        with_ids
        | "CleanedRowFeatures" >> beam.Map(_cleaned_row_features)
        | "ValidateCleanedRows" >> validation.ValidateRows(validation.load_suite("cleaned_dataset", options))
    )
    repaired = transforms.count_repairs(checked.records)
    reasons_count = transforms.count_by_reason(quarantined)
    records_in = (
        (read["records"], read[QUARANTINE_TAG])
        | "AllRead" >> beam.Flatten()
        | "CountIn" >> beam.combiners.Count.Globally()
    )
    input_files = read[common.INPUTS_TAG] | "CountFiles" >> beam.combiners.Count.Globally()
    all_written = tuple(written) | "AllWritten" >> beam.Flatten() | "WrittenList" >> beam.combiners.ToList()
    # Wait for the vocabulary and input list to be written before the summary.
    done = (
        (vocab_path, inputs_path)
        | "SideFilesDone" >> beam.Flatten()
        | "CountSideFiles" >> beam.combiners.Count.Globally()
    )
    (
        pipeline
        | "SummaryTrigger" >> beam.Create([None])
        | "Summary"
        >> beam.Map(
            _summary,
            stats=beam.pvalue.AsSingleton(stats),
            reasons_count=beam.pvalue.AsSingleton(reasons_count),
            records_in=beam.pvalue.AsSingleton(records_in),
            written=beam.pvalue.AsSingleton(all_written),
            vocabulary_size=beam.pvalue.AsSingleton(vocabulary | "VocabSize" >> beam.Map(len)),
            input_files=beam.pvalue.AsSingleton(input_files),
            repaired=beam.pvalue.AsSingleton(repaired),
            raw_rows=beam.pvalue.AsSingleton(raw_rows),
            cleaned_rows=beam.pvalue.AsSingleton(cleaned_rows),
        )
        | "WaitSideFiles" >> beam.Map(lambda summary, _: summary, beam.pvalue.AsSingleton(done))
        | "WriteSummary" >> beam.Map(lambda summary: common.write_json(common.join(out, RUN_SUMMARY_FILE), summary))
    )


def write_manifest(args: argparse.Namespace, beam_args: list[str], seconds: float) -> dict[str, Any]:
    """Reads the run summary, adds checksums and options, writes manifest.json."""
    out = args.output_dir
    summary_path = common.join(out, RUN_SUMMARY_FILE)
    summary = common.read_json(summary_path)
    FileSystems.delete([summary_path])
    files = [(path, n) for path, n in summary["written"]]
    files += [
        (common.join(out, names.VOCAB_FILE), summary["vocabulary_size"]),
        (common.join(out, names.INPUTS_FILE), summary["input_files"]),
    ]
    outputs = common.describe_outputs(out, files)
    splits = {
        name: summary["splits"].get(
            name, {"records": 0, "labels": {}, "tokens": 0, "oov_rate": 0.0, "token_length": {}}
        )
        for name in names.SPLITS
    }
    records_out = sum(split["records"] for split in splits.values())
    quarantined = summary["quarantine"]["total"]
    options = {k: v for k, v in sorted(vars(args).items()) if k not in ("overwrite",)}
    deterministic = {
        "pipeline_version": PIPELINE_VERSION,
        "options": {k: v for k, v in options.items() if k not in ("output_dir",)},
        "inputs_sha256": outputs[names.INPUTS_FILE]["sha256"],
        "outputs": outputs,
    }
    fingerprint = hashlib.sha256(json.dumps(deterministic, sort_keys=True).encode("utf-8")).hexdigest()
    manifest = {
        "kind": "dataset",
        "task": "classification",
        "pipeline_version": PIPELINE_VERSION,
        "dataset_fingerprint": fingerprint,
        "labels": list(names.LABELS),
        "preprocessing": {"lowercase": args.lowercase, "definition": "lstm_model.preprocessing.TextPreprocessor"},
        "vocabulary": {
            "file": names.VOCAB_FILE,
            "size": summary["vocabulary_size"],
            "splits": args.vocab_splits,
            "min_count": args.min_count,
        },
        "splits": splits,
        "quarantine": summary["quarantine"],
        "counts": {
            "input_files": summary["input_files"],
            "records_in": summary["records_in"],
            "records_out": records_out,
            "quarantined": quarantined,
            "balanced": summary["records_in"] == records_out + quarantined,
        },
        "options": options,
        "beam_args": beam_args,
        "outputs": outputs,
        "run": {"seconds": round(seconds, 1), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    reports = validate_run(args, manifest, summary["validation_rows"])
    manifest["repaired"] = summary["repaired"]
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


def print_report(manifest: dict[str, Any]) -> None:
    counts = manifest["counts"]
    lines = [
        f"ingest finished in {manifest['run']['seconds']} s: {counts['input_files']} input files, "
        f"{counts['records_in']} records in = {counts['records_out']} written + {counts['quarantined']} quarantined"
        + ("" if counts["balanced"] else "  ** COUNTS DO NOT BALANCE **"),
    ]
    for name, split in manifest["splits"].items():
        if split["records"]:
            labels = ", ".join(f"{k} {v}" for k, v in split["labels"].items())
            length = split["token_length"]
            lines.append(
                f"  {name:<10} {split['records']:>7} records ({labels}); OOV {split['oov_rate']:.2%}; "
                f"tokens p50 {length.get('p50')} p95 {length.get('p95')} max {length.get('max')}"
            )
    for reason, n in manifest["quarantine"]["by_reason"].items():
        lines.append(f"  quarantined {reason}: {n}")
    for repair, n in manifest["repaired"].items():
        lines.append(f"  repaired and kept, {repair}: {n}")
    checks = manifest["validation"]
    lines.append(
        f"  validation: {'passed' if checks['success'] else 'FAILED' if checks['critical_failures'] else 'passed with warnings'}"
        f" ({len(checks['critical_failures'])} critical, {len(checks['warnings'])} warnings) -> {checks['report']}"
    )
    lines.append(
        f"  vocabulary: {manifest['vocabulary']['size']} tokens; manifest: {manifest['dataset_fingerprint'][:12]}"
    )
    print("\n".join(lines), flush=True)


def run(argv: list[str] | None = None, save_main_session: bool = False) -> dict[str, Any]:
    """Runs the ingest pipeline; returns the manifest."""
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    common.setup_logging()
    validate_args(args)
    common.prepare_output_dir(args.output_dir, args.overwrite)
    options = PipelineOptions(beam_args, save_main_session=save_main_session)
    LOGGER.info("ingest %s (%s) -> %s", args.input, args.input_format, args.output_dir)
    started = time.monotonic()
    with beam.Pipeline(options=options) as pipeline:
        build_pipeline(pipeline, args)
    manifest = write_manifest(args, beam_args, time.monotonic() - started)
    reports = manifest.pop("_reports")
    print_report(manifest)
    if not manifest["counts"]["balanced"]:
        raise UserError("records in != records out + quarantined; see manifest.json counts")
    validation.log_warnings(reports)
    validation.raise_on_critical(reports, common.join(args.output_dir, validation.VALIDATION_HTML))
    return manifest


def main() -> None:
    sys.exit(common.main_with_user_errors(run))


if __name__ == "__main__":
    main()
