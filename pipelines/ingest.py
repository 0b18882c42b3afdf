"""Ingest pipeline: raw text -> cleaned, checked, deduplicated, split TFRecords + vocabulary.

    python -m pipelines.ingest --input ../shared/data/imdb/mini/aclImdb \\
        --input_format aclimdb --output_dir data/processed/imdb_mini
    python -m pipelines.ingest --task language_model --input ../shared/data/tinyshakespeare/input.txt \\
        --input_format text --tokenizer char --split_by position --test_fraction 0 --output_dir data/processed/shakespeare

The task (`--task`, see pipelines/tasks/) says what a record holds and how it is
checked, split and written; everything else here is shared by every task.

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
import functools
import hashlib
import json
import logging
import sys
import time
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from lstm_model import model_dir as model_info
from pipelines import cloud, common, runs, sinks, sources, spill, tasks, transforms, validation
from pipelines.common import QUARANTINE_TAG, UserError
from schemas import names, reasons
from textprep import vocabulary as vocabulary_format
from textprep.spec import TextSpec

LOGGER = logging.getLogger("lstm_pipeline")
PIPELINE_VERSION = "1"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.ingest",
        description="Raw text -> cleaned, validated, deduplicated TFRecords with a vocabulary and a manifest.",
        epilog="Unrecognised flags go to Beam's PipelineOptions (e.g. --runner DataflowRunner, "
        "--direct_num_workers 2 --direct_running_mode multi_processing).",
    )
    parser.add_argument(
        "--task",
        default=names.TASK_CLASSIFICATION,
        choices=tasks.available(),
        help="What the dataset is for: decides the record fields, checks, splits and features (default: %(default)s).",
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
    common.add_encoding_flags(io_group)

    clean_group = parser.add_argument_group(
        "cleaning, tokenizer and checks (defaults depend on the task: classification lowercases words with markup "
        "stripped; a language model keeps case, and with characters keeps the text's layout)"
    )
    clean_group.add_argument("--lowercase", dest="lowercase", action="store_const", const=True, help="Lowercase.")
    clean_group.add_argument("--no_lowercase", dest="lowercase", action="store_const", const=False, help="Keep case.")
    clean_group.add_argument(
        "--strip_html", dest="strip_html", action="store_const", const=True, help="Remove tags, decode entities."
    )
    clean_group.add_argument(
        "--no_strip_html", dest="strip_html", action="store_const", const=False, help="Keep markup as text."
    )
    clean_group.add_argument(
        "--whitespace",
        default=None,
        choices=names.WHITESPACE_MODES,
        help="collapse: every whitespace run -> one space; lines: keep line breaks; keep: only CRLF/CR -> LF.",
    )
    clean_group.add_argument(
        "--tokenizer",
        default=None,
        choices=names.TOKENIZERS,
        help="word: words and punctuation; char: Unicode characters; wordpiece: subwords learned on the training "
        "side (task default: word for classification, char for a language model).",
    )
    clean_group.add_argument(
        "--max_chars",
        type=int,
        default=None,
        help="Quarantine texts longer than this many characters (default: 100000; language model: 50000000).",
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
        default=None,
        help="Share of records without a given split sent to test (default: 0.2; language model: 0).",
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
        default=None,
        help="Minimum training-side count of a vocabulary token (default: 2; character vocabularies: 1).",
    )
    split_group.add_argument(
        "--vocabulary",
        default=None,
        help="Reuse the vocabulary and text settings of this dataset or model directory (its vocab.tsv and "
        "preprocessing) instead of building one, so ids mean the same as there (transfer learning).",
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
    for name in tasks.available():
        tasks.get(name).add_ingest_flags(parser)
    cloud.add_flags(parser)
    return parser


def validate_args(args: argparse.Namespace) -> tasks.Task:
    """Checks the options and fills in the task's defaults (args.spec, the TextSpec, too); returns the task."""
    task = tasks.get(args.task)
    if args.input_format == "parallel" and len(task.text_fields) < 2:
        raise UserError(f"--input_format parallel holds sentence pairs: it needs --task translation, not {task.name}")
    if args.test_fraction is None:
        args.test_fraction = task.default_test_fraction
    if args.max_chars is None:
        args.max_chars = task.default_max_chars
    if not 0.0 <= args.validation_fraction < 1.0:
        raise UserError(f"--validation_fraction must be in [0, 1), got {args.validation_fraction}")
    if not 0.0 <= args.test_fraction < 1.0:
        raise UserError(f"--test_fraction must be in [0, 1), got {args.test_fraction}")
    if args.max_chars < 1:
        raise UserError(f"--max_chars must be >= 1, got {args.max_chars}")
    splits = [s.strip() for s in args.vocab_splits.split(",") if s.strip()]
    bad = [s for s in splits if s not in (names.SPLIT_TRAIN, names.SPLIT_UNSUP)]
    if bad or not splits:
        raise UserError(
            f"--vocab_splits may name train and unsup only (never validation/test), got {args.vocab_splits!r}"
        )
    args.vocab_splits = splits
    common.check_encodings(args)
    for flag in ("max_quarantine_rate", "max_duplicate_rate", "max_oov_rate", "min_label_share", "max_label_share"):
        if not 0.0 <= getattr(args, flag) <= 1.0:
            raise UserError(f"--{flag} must be in [0, 1], got {getattr(args, flag)}")
    task.check_args(args)
    if args.vocabulary:
        args.spec, args.given_vocabulary = read_given_vocabulary(args.vocabulary, task.text_spec(args), args)
    else:
        args.spec, args.given_vocabulary = task.text_spec(args), None
    if args.min_count is None:
        args.min_count = 1 if args.spec.tokenizer == "char" else 2
    if args.min_count < 1:
        raise UserError(f"--min_count must be >= 1, got {args.min_count}")
    if args.vocab_size <= len(args.spec.reserved_tokens):
        raise UserError(f"--vocab_size must exceed {len(args.spec.reserved_tokens)}, got {args.vocab_size}")
    return task


def read_given_vocabulary(directory: str, default_spec: TextSpec, args: argparse.Namespace):
    """(TextSpec, [(token, count)]) of a dataset or model directory given by --vocabulary.

    The text settings come with the vocabulary (ids only mean the same under the same cleaning and
    tokenizer); an explicitly given flag that contradicts them is an error, not silently overridden.
    """
    directory = directory.rstrip("/")
    vocab_path = common.join(directory, names.VOCAB_FILE)
    settings = None
    size = None  # the vocabulary size its manifest or model_info.json records
    for file_name in (names.MANIFEST_FILE, names.MODEL_INFO_FILE):
        path = common.join(directory, file_name)
        if common.exists(path):
            try:
                document = common.read_json(path)
                if file_name == names.MODEL_INFO_FILE:
                    size = model_info.check_model_info(document, path).get("vocabulary_size")
                elif not isinstance(document, dict):
                    raise model_info.ModelDirError(f"{path} is not a manifest.json of this project")
                elif isinstance(document.get("vocabulary"), dict):
                    size = document["vocabulary"].get("size")
                settings = document.get("preprocessing")
                if settings is not None:
                    model_info.check_preprocessing(settings, path)
            except model_info.ModelDirError as error:
                raise UserError(f"--vocabulary: {error}") from None
            except (ValueError, OSError) as error:
                raise UserError(f"--vocabulary: cannot read {path}: {error}") from None
            break
    if settings is None or not common.exists(vocab_path):
        raise UserError(
            f"--vocabulary {directory}: expected a dataset or model directory with vocab.tsv and a manifest"
        )
    try:
        model_info.inside(directory, names.VOCAB_FILE, vocab_path)
        with FileSystems.open(vocab_path) as handle:
            rows = model_info.check_vocabulary(
                handle.read(), vocab_path, size if isinstance(size, int) else None, settings.get("reserved_tokens")
            )
        spec = TextSpec.from_dict(
            {**settings, "reserved_tokens": vocabulary_format.reserved_prefix([t for t, _ in rows])}
        )
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"--vocabulary: {error}") from None
    given = {"lowercase": args.lowercase, "strip_html": args.strip_html, "whitespace": args.whitespace}
    given["tokenizer"] = args.tokenizer
    for field, value in given.items():
        if value is not None and value != getattr(spec, field):
            raise UserError(
                f"--{field} {value} contradicts the vocabulary in {directory} ({field}={getattr(spec, field)})"
            )
    # A classifier can use a language model's vocabulary (its extra [BOS]/[EOS] ids are never seen), not the reverse.
    needed = default_spec.reserved_tokens
    if spec.reserved_tokens[: len(needed)] != needed:
        raise UserError(
            f"--vocabulary {directory} reserves {list(spec.reserved_tokens)}; --task {args.task} needs "
            f"{list(needed)} first"
        )
    return spec, rows


def _write_vocabulary(vocabulary: list[tuple[str, int]], path: str) -> str:
    with FileSystems.create(path) as handle:
        handle.write(vocabulary_format.format_vocabulary(vocabulary).encode("utf-8"))
    return path


def validate_run(
    task: tasks.Task, args: argparse.Namespace, manifest: dict[str, Any], row_results: dict[str, Any]
) -> list[dict[str, Any]]:
    """Evaluate the raw-rows and dataset suites; writes validation.json/html."""
    counts = manifest["counts"]
    by_reason = manifest["quarantine"]["by_reason"]
    duplicates = sum(
        by_reason.get(r, 0) for r in (reasons.DUPLICATE_ID, reasons.DUPLICATE_TEXT, reasons.DUPLICATE_OF_TEST)
    )
    records_in = max(counts["records_in"], 1)
    options = suite_options(task, args)
    raw_report = validation.evaluate(
        validation.load_suite(task.raw_suite, options),
        row_results["raw_rows"],
        {"quarantine_rate": counts["quarantined"] / records_in, "duplicate_rate": duplicates / records_in},
    )
    dataset_report = validation.evaluate(
        validation.load_suite(task.dataset_suite, options),
        row_results["dataset"],
        task.dataset_figures(manifest["splits"]),
    )
    reports = [raw_report, dataset_report]
    validation.write_report(args.output_dir, f"Ingest validation: {args.input}", reports)
    return reports


def suite_options(task: tasks.Task, args: argparse.Namespace) -> dict[str, Any]:
    """What "$name" thresholds in the suites may refer to: the options, and the task's label set."""
    return {**vars(args), "labels": list(task.labels)}


def _step(label: str, field) -> str:
    """A step's label: plain for the record's main text, LABEL[field] for a task's further texts."""
    return label if field.key == "text" else f"{label}[{field.name}]"


def build_pipeline(pipeline: beam.Pipeline, args: argparse.Namespace, task: tasks.Task):
    """Adds the ingest steps to `pipeline` (labelled, so Dataflow's graph reads like this); returns the
    run summary's written-file PCollection (one element, ready once every figure is)."""
    out = args.output_dir
    spec = args.spec
    columns = sources.ColumnNames(
        args.text_column, args.label_column, args.id_column, args.split_column, **task.columns(args)
    )
    read = pipeline | "Read" >> sources.ReadRawRecords(
        args.input, args.input_format, columns, encoding=args.encoding, **task.reader_options(args)
    )
    checked = read["records"] | "CheckRows" >> transforms.CheckRows(
        args.max_chars,
        encoding=args.encoding,
        fallback_encoding=args.fallback_encoding,
        pre_check=task.raw_check(args),
        **task.check_rows_options(args),
    )
    # Every text of the record (one, or translation's source and target) is cleaned with the one TextSpec.
    cleaned_records, clean_quarantine = checked.records, []
    for field in task.text_fields:
        cleaned = cleaned_records | _step("CleanText", field) >> transforms.CleanText(spec, field.key)
        cleaned_records = cleaned.records
        clean_quarantine.append(cleaned[QUARANTINE_TAG])
    deduped = cleaned_records | "DropDuplicates" >> transforms.DropDuplicates(common.join(out, "dedupe"))
    split = deduped["records"] | "AssignSplit" >> beam.FlatMap(task.split, args)

    # One vocabulary per group of fields (translation: per side, or one joint vocabulary).
    vocabularies = {}  # field name -> PCollection of one [(token, count)] list
    for group in task.vocabulary_groups(args):
        first = group[0]
        if args.given_vocabulary is not None:
            vocabulary = pipeline | _step("GivenVocabulary", first) >> beam.Create([args.given_vocabulary])
        else:
            vocab_splits = set(args.vocab_splits)
            vocabulary = (
                split
                | _step("TrainingSide", first) >> beam.Filter(lambda r, splits: r["split"] in splits, vocab_splits)
                | _step("BuildVocabulary", first)
                >> transforms.BuildVocabulary(args.vocab_size, args.min_count, spec, fields=[f.key for f in group])
            )
        vocabularies.update({field.name: vocabulary for field in group})
    distinct = list({id(v): v for v in vocabularies.values()}.values())
    all_vocabularies = distinct[0] if len(distinct) == 1 else tuple(distinct) | "AllVocabularies" >> beam.Flatten()
    with_ids = (
        split
        # The records wait for the vocabulary on disk, not in the runner's memory.
        | "WaitForVocabulary" >> spill.SpillUntil(common.join(out, "vocabulary"), after=all_vocabularies)
    )
    for field in task.text_fields:
        with_ids = with_ids | _step("ToTokenIds", field) >> transforms.ToTokenIds(
            vocabularies[field.name], spec, field.key, field.ids_key
        )

    # One writer for every split: OUT/SPLIT/data-*.tfrecord.gz, each split sharded and sorted on its own.
    written = [
        with_ids
        | "Example" >> beam.Map(lambda r: (r["split"], task.example(r)))
        | "WriteSplits"
        >> sinks.WriteSortedShardsTo(
            {split_name: common.join(out, split_name, "data") for split_name in names.SPLITS},
            names.TFRECORD_SUFFIX,
            records_per_shard=args.records_per_shard,
        )
    ]

    quarantined = (
        read[QUARANTINE_TAG],
        checked[QUARANTINE_TAG],
        *clean_quarantine,
        deduped[QUARANTINE_TAG],
    ) | "AllQuarantine" >> beam.Flatten()
    written.append(quarantined | "Quarantine" >> sinks.WriteQuarantine(out))
    vocab_files = [
        vocabularies[field.name]
        | _step("WriteVocabulary", field)
        >> beam.Map(lambda v, path: (_write_vocabulary(v, path), len(v)), common.join(out, field.vocab_file))
        for field in task.text_fields
    ]
    inputs_file = read[common.INPUTS_TAG] | "WriteInputList" >> runs.WriteInputList(out)

    options = suite_options(task, args)
    raw_rows = (
        read["records"]
        | "RawRowFeatures"
        >> beam.Map(validation.raw_row_features, encoding=args.encoding, fallback_encoding=args.fallback_encoding)
        | "ValidateRawRows" >> validation.ValidateRows(validation.load_suite(task.raw_suite, options))
    )
    dataset_rows = (
        with_ids
        | "DatasetRowFeatures" >> beam.Map(task.dataset_row)
        | "ValidateDatasetRows" >> validation.ValidateRows(validation.load_suite(task.dataset_suite, options))
    )
    # Pieces of a document cut into splits beyond its first: records out - these = documents.
    pieces = (
        with_ids
        | "ExtraPieces" >> beam.Filter(lambda r: r.get("continues", False))
        | "CountPieces" >> beam.combiners.Count.Globally()
    )
    extra_fields = tuple((f.name, f.key, f.ids_key) for f in task.text_fields[1:])
    return pipeline | "WriteRunSummary" >> runs.WriteRunSummary(
        out,
        splits=with_ids | "DatasetStats" >> beam.CombineGlobally(transforms.DatasetStatsFn(task.labels, extra_fields)),
        quarantine=transforms.count_by_reason(quarantined) | "QuarantineSummary" >> beam.Map(runs.quarantine_summary),
        records_in=runs.records_in(read),
        extra_pieces=pieces,
        written=runs.collect_written("All", written),
        # Written before the summary: the manifest describes them. [(path, size)] in text-field order.
        vocabulary_files=tuple(vocab_files)
        | "VocabFiles" >> beam.Flatten()
        | "ListVocabFiles" >> beam.combiners.ToList(),
        inputs_file=inputs_file,
        repaired=transforms.count_repairs(checked.records)
        | "SortRepairs" >> beam.Map(lambda r: dict(sorted(r.items()))),
        raw_rows=raw_rows,
        dataset_rows=dataset_rows,
    )


def write_manifest(task: tasks.Task, args: argparse.Namespace, beam_args: list[str], seconds: float) -> dict[str, Any]:
    """Reads the run summary, adds checksums and options, writes manifest.json."""
    out = args.output_dir
    summary = runs.read_summary(out)
    files = [(path, n) for path, n in summary["written"]]
    # A joint vocabulary is one list written to each side's file: {file name: size}.
    vocab_sizes = {path.rsplit("/", 1)[-1]: size for path, size in summary["vocabulary_files"]}
    files += [(path, size) for path, size in sorted(summary["vocabulary_files"])] + [tuple(summary["inputs_file"])]
    outputs = common.describe_outputs(out, files)
    empty = {"records": 0, "labels": {}, "tokens": 0, "oov_rate": 0.0, "token_length": {}}
    splits = {name: summary["splits"].get(name, empty) for name in names.SPLITS}
    records_out = sum(split["records"] for split in splits.values())
    quarantined = summary["quarantine"]["total"]
    documents_out = records_out - summary["extra_pieces"]
    hidden = ("overwrite", "spec", "given_vocabulary")
    options = {k: v for k, v in sorted(vars(args).items()) if k not in hidden}
    deterministic = {
        "pipeline_version": PIPELINE_VERSION,
        "options": {k: v for k, v in options.items() if k not in ("output_dir",)},
        "inputs_sha256": outputs[names.INPUTS_FILE]["sha256"],
        "outputs": outputs,
    }
    fingerprint = hashlib.sha256(json.dumps(deterministic, sort_keys=True).encode("utf-8")).hexdigest()
    manifest = {
        "kind": "dataset",
        "task": task.name,
        "pipeline_version": PIPELINE_VERSION,
        "dataset_fingerprint": fingerprint,
        **task.manifest_fields(args),
        "preprocessing": {**args.spec.to_dict(), "definition": "textprep.preprocessing.TextPreprocessor"},
        "vocabulary": {
            "file": task.text_fields[0].vocab_file,
            "size": vocab_sizes[task.text_fields[0].vocab_file],
            "splits": args.vocab_splits,
            "min_count": args.min_count,
            "tokenizer": args.spec.tokenizer,
            "from": args.vocabulary,
        },
        # Every text field's vocabulary (one entry for single-text tasks; translation: source and target).
        "vocabularies": {
            **{f.name: {"file": f.vocab_file, "size": vocab_sizes[f.vocab_file]} for f in task.text_fields},
            "joint": any(len(group) > 1 for group in task.vocabulary_groups(args)),
        },
        "splits": splits,
        "quarantine": summary["quarantine"],
        "counts": {
            "input_files": summary["inputs_file"][1],
            "records_in": summary["records_in"],
            "records_out": records_out,
            # A document cut into train/validation/test pieces (--split_by position) is one record in, several out.
            "documents_out": documents_out,
            "quarantined": quarantined,
            "balanced": summary["records_in"] == documents_out + quarantined,
        },
        "options": options,
        "beam_args": beam_args,
        "outputs": outputs,
        "run": {"seconds": round(seconds, 1), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    reports = validate_run(task, args, manifest, {"raw_rows": summary["raw_rows"], "dataset": summary["dataset_rows"]})
    manifest["repaired"] = summary["repaired"]
    if args.encoding == "auto":
        manifest["input_encodings"] = runs.read_input_encodings(out)
    manifest["validation"] = runs.validation_block(reports)
    common.write_json(common.join(out, names.MANIFEST_FILE), manifest)
    manifest["_reports"] = reports
    return manifest


def print_report(manifest: dict[str, Any]) -> None:
    counts = manifest["counts"]
    lines = [
        f"ingest ({manifest['task']}) finished in {manifest['run']['seconds']} s: {counts['input_files']} input files, "
        f"{counts['records_in']} records in = {counts['documents_out']} written + {counts['quarantined']} quarantined"
        + (
            f" ({counts['records_out']} records after cutting into splits)"
            if counts["records_out"] != counts["documents_out"]
            else ""
        )
        + ("" if counts["balanced"] else "  ** COUNTS DO NOT BALANCE **"),
    ]
    for name, split in manifest["splits"].items():
        if split["records"]:
            labels = ", ".join(f"{k} {v}" for k, v in split["labels"].items())
            length = split["token_length"]
            lines.append(
                f"  {name:<10} {split['records']:>7} records{f' ({labels})' if labels else ''}, {split['tokens']} tokens; "
                f"OOV {split['oov_rate']:.2%}; tokens p50 {length.get('p50')} p95 {length.get('p95')} max {length.get('max')}"
            )
            for field_name, field in split.get("fields", {}).items():
                length = field["token_length"]
                lines.append(
                    f"  {'':<10} {field_name}: {field['tokens']} tokens; OOV {field['oov_rate']:.2%}; "
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
    sizes = ", ".join(f"{name} {v['size']}" for name, v in manifest["vocabularies"].items() if isinstance(v, dict))
    lines.append(
        f"  vocabulary: {sizes} {manifest['vocabulary']['tokenizer']} tokens"
        f"{' (joint)' if manifest['vocabularies']['joint'] else ''}; manifest: {manifest['dataset_fingerprint'][:12]}"
    )
    print("\n".join(lines), flush=True)


def run(argv: list[str] | None = None, save_main_session: bool = False) -> dict[str, Any]:
    """Runs the ingest pipeline; returns the manifest (a dry run: the Dataflow job description)."""
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    common.setup_logging()
    args.output_dir = cloud.expand_date(args.output_dir)
    dry_run = cloud.check_paths(
        beam_args, {"--input": args.input, "--output_dir": args.output_dir, "--vocabulary": args.vocabulary}
    )
    task = validate_args(args)
    if not dry_run:
        common.prepare_output_dir(args.output_dir, args.overwrite)
    options = PipelineOptions(beam_args, save_main_session=save_main_session)
    # Before the runner starts its threads and workers. Ingest only: scoring measured the same either way.
    common.limit_malloc_arenas()
    LOGGER.info("ingest %s (%s, task %s) -> %s", args.input, args.input_format, task.name, args.output_dir)
    manifest, reports = cloud.run_pipeline(
        "ingest",
        args,
        beam_args,
        options,
        lambda pipeline: build_pipeline(pipeline, args, task),
        functools.partial(write_manifest, task, args, beam_args),
    )
    if dry_run:
        return manifest
    print_report(manifest)
    cloud.finish(args.output_dir, manifest, reports)
    return manifest


def main() -> None:
    sys.exit(common.main_with_user_errors(run))


if __name__ == "__main__":
    main()
