"""Benchmark for bulk translation against a bare loop over the exported `translate` signature.

    python -m bench.translation run --work_dir data/bench_translation [--quick]
    python -m bench.translation translate-loop --sources FILE --model_dir DIR --result_json FILE \\
        [--batch_size 64 --order length --compare_parquet PIPELINE_OUT --output_parquet FILE]

``translate-loop`` is the baseline, written without any project code (tensorflow,
tensorflow_text, pyarrow, the standard library and `bench.generation`'s loop helpers, which use
nothing else): it reads the source lines (the `lines` format's numbering, `FILE:LINE` ids), loads
``MODEL_DIR/export`` and calls its ``translate`` signature (beam search, the model's width and
length penalty; the model's max_length_a / max_length_b from ``model_info.json``) on batches of
--batch_size sentences. ``--order file`` calls them in file order (the naive script);
``--order length`` sorts the whole input by characters first, so a call's sentences have similar
lengths and few decoding steps are wasted on padding (what a careful hand-written script does,
and more than the pipeline can: it sorts within one RunInference batch of up to 8 calls).
``loop_s`` times the model calls only. With --compare_parquet it reads the pipeline's Parquet and
records whether every row's translation equals the loop's (decoding is deterministic and a row's
output never depends on its batch, so the order does not change a translation).

``run`` builds what it needs if missing (Multi30k de->en ingested in full and a model of the
default architecture trained for a few steps: decoding cost depends on the architecture and the
vocabularies, not on how well it was trained) and a sources file (evenly spaced German sentences of
Multi30k train), then times the pipeline and both loops as separate commands with
`bench.measure.run_command`. The figure (goal >= 0.9) is sentences/s of the whole pipeline command
against the length-sorted loop's whole command (start-up and model load counted on both sides, as
for generation); against the loop's timed calls alone and against the file-order loop: info rows. `python -m bench.run` includes it as the "translation"
benchmark. --quick uses the Multi30k slice, a tiny model and a few sentences: it checks the harness.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

from bench.generation import figures_markdown, load_signature, read_lines, read_parquet_rows, rows_by_id, write_parquet

STARTED = time.perf_counter()  # the loop reports its whole process time from here (imports included)

REPO = Path(__file__).resolve().parent.parent
MULTI30K = REPO.parent / "shared" / "data" / "multi30k"
TRANSLATE_OUTPUTS = ("translation", "log_prob", "num_tokens", "source_tokens", "source_oov")
MAX_MISMATCHES_SHOWN = 5
TRANSLATE_BATCH = 64  # sentences per model call, both sides (the pipeline's default --batch_size)
# Full run: 2,000 sentences with beam 5, about 2 minutes of model calls on 2 cores for the default
# architecture: long enough that the pipeline's fixed cost (imports, Beam's stages, validation) is a
# minor part, short enough for `make bench`.
SIZES = {"quick": 40, "full": 2000}
INGEST_FLAGS = ["--task", "translation", "--input_format", "parallel", "--source_language", "de"]
INGEST_FLAGS += ["--target_language", "en"]
# Decoding speed depends on the architecture (the defaults) and the vocabularies (all of Multi30k), not on
# training: a few steps, and the cheapest evaluation the trainer allows.
FULL_MODEL_FLAGS = ["--epochs", "1", "--steps_per_epoch", "20", "--validation_bleu_sentences", "20"]
QUICK_MODEL_FLAGS = ["--epochs", "1", "--steps_per_epoch", "3", "--embedding_dim", "16", "--units", "16"]
QUICK_MODEL_FLAGS += ["--validation_bleu_sentences", "10", "--beam_width", "2"]
COMMON_MODEL_FLAGS = ["--baseline_iterations", "1", "--early_stopping_patience", "0", "--verbose", "0"]
# One process: decoding is a few large TensorFlow calls that use both cores from one interpreter (as for the
# language-model pipelines, bench/generation.py's GENERATION_RUNNER).
TRANSLATION_RUNNER = "in_process"


# ---------------------------------------------------------------------- the bare loop (no project code)
def compare_translated(loop: dict[str, dict], pipeline: dict[str, dict]) -> dict:
    """Loop rows vs pipeline rows by id: translations and token counts must be equal."""
    common = sorted(set(loop) & set(pipeline))
    equal = [
        loop[i]["translation"] == pipeline[i]["translation"] and loop[i]["num_tokens"] == pipeline[i]["num_tokens"]
        for i in common
    ]
    log_prob_diff = max((abs(loop[i]["log_prob"] - pipeline[i]["log_prob"]) for i in common), default=0.0)
    return {
        "compared": len(common),
        "equal_translations": sum(equal),
        "all_equal": bool(common) and all(equal) and len(loop) == len(pipeline),
        "only_in_loop_count": len(set(loop) - set(pipeline)),
        "only_in_pipeline_count": len(set(pipeline) - set(loop)),
        "max_abs_log_prob_difference": log_prob_diff,
        "mismatches": [
            {"id": i, "loop": loop[i]["translation"], "pipeline": pipeline[i]["translation"]}
            for i, ok in zip(common, equal, strict=True)
            if not ok
        ][:MAX_MISMATCHES_SHOWN],
    }


def translate_loop(args: argparse.Namespace) -> dict:
    """The translate signature on in-memory batches of sentences; returns sentences/s of the timed calls."""
    import tensorflow as tf

    rows = read_lines(args.sources)
    if not rows:
        raise SystemExit(f"no sentences in {args.sources}")
    decoding = json.loads((Path(args.model_dir) / "model_info.json").read_text()).get("decoding", {})
    max_length_a = tf.constant(float(decoding.get("max_length_a", 1.5)), tf.float32)
    max_length_b = tf.constant(int(decoding.get("max_length_b", 10)), tf.int32)
    order = list(range(len(rows)))
    if args.order == "length":
        order.sort(key=lambda i: len(rows[i][1]))
    load_started = time.perf_counter()
    translate = load_signature(args.model_dir, "translate")
    translate(source=tf.constant([rows[0][1]]), max_length_a=max_length_a, max_length_b=max_length_b)  # warm-up
    load_s = time.perf_counter() - load_started
    outputs: dict[str, list] = {key: [None] * len(rows) for key in TRANSLATE_OUTPUTS}
    started = time.perf_counter()
    for start in range(0, len(order), args.batch_size):
        batch = order[start : start + args.batch_size]
        out = translate(
            source=tf.constant([rows[i][1] for i in batch]), max_length_a=max_length_a, max_length_b=max_length_b
        )
        for key in TRANSLATE_OUTPUTS:
            for i, value in zip(batch, out[key].numpy().tolist(), strict=True):
                outputs[key][i] = value
    loop_s = time.perf_counter() - started
    outputs["translation"] = [t.decode("utf-8") for t in outputs["translation"]]
    columns = {"id": [row_id for row_id, _ in rows], "source": [text for _, text in rows], **outputs}
    if args.output_parquet:
        write_parquet(args.output_parquet, columns)
    done_s = time.perf_counter() - STARTED  # the loop's work is done: what follows only checks it
    tokens = int(sum(outputs["num_tokens"]))
    result = {
        "rows": len(rows),
        "order": args.order,
        "done_s": round(done_s, 3),
        "tokens_generated": tokens,
        "loop_s": round(loop_s, 3),
        "load_s": round(load_s, 3),
        "rows_per_s": round(len(rows) / loop_s, 2) if loop_s > 0 else None,
        "tokens_per_s": round(tokens / loop_s, 1) if loop_s > 0 else None,
        "batch_size": args.batch_size,
    }
    if args.compare_parquet:
        pipeline_rows = read_parquet_rows(args.compare_parquet, ["translation", "num_tokens", "log_prob"])
        result["comparison"] = compare_translated(rows_by_id(columns), pipeline_rows)
    result["process_s"] = round(time.perf_counter() - STARTED, 2)
    return result


# ---------------------------------------------------------------------- the benchmark (project harness)
def make_sources(folder: Path, quick: bool) -> Path:
    """sources_MODE_COUNT.de: evenly spaced German sentences of Multi30k train, one per line."""
    count = SIZES["quick" if quick else "full"]
    path = folder / f"sources_{'quick' if quick else 'full'}_{count}.de"
    if path.exists():
        return path
    train = MULTI30K / "train.de.gz"
    if not train.is_file():
        raise FileNotFoundError(f"Multi30k is missing at {MULTI30K} (python -m pipelines.datasets multi30k)")
    with gzip.open(train, "rt", encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in handle if line.strip()]
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines[i * len(lines) // count] + "\n" for i in range(count)), encoding="utf-8")
    return path


def build_model(h, work: Path) -> Path:
    """A translation model of the default architecture (quick: tiny) on Multi30k (full: all of it; quick: a slice)."""
    raw = MULTI30K
    if h.quick:
        raw = work / "multi30k_slice"
        if not (raw / "train.de.gz").exists():
            h.run(
                "translation_slice",
                h.py("pipelines.datasets", "multi30k-slice", "--lines", "600", "--cache_dir", str(work)),
            )
    dataset = work / ("dataset_quick" if h.quick else "dataset")
    if not (dataset / "manifest.json").exists():
        h.run(
            "translation_ingest",
            h.py("pipelines.ingest", "--input", str(raw), *INGEST_FLAGS, "--output_dir", str(dataset), "--overwrite"),
        )
    model = work / ("model_quick" if h.quick else "model_full")
    if not (model / "model_info.json").exists() or not (model / "export" / "saved_model.pb").exists():
        h.run(
            "translation_train",
            h.py(
                "lstm_model.train", "--dataset_dir", str(dataset), "--model_dir", str(model), "--overwrite",
                *(QUICK_MODEL_FLAGS if h.quick else FULL_MODEL_FLAGS), *COMMON_MODEL_FLAGS,
            ),
        )  # fmt: skip
    return model


def bench_translation(h) -> dict:
    """Bulk translation, pipeline vs bare loops; `h` is a `bench.run.Harness`. Returns figures and runs."""
    from bench.run import GOAL_SCORE_RATE_RATIO, RUNNER_MODES, figure

    work = h.work / "translation"
    model = build_model(h, work)
    sources = make_sources(work / "inputs", h.quick)
    runner = h.beam_flags if h.args.runner_mode else RUNNER_MODES[TRANSLATION_RUNNER]
    translated_dir = work / "translate_pipeline"
    pipe = h.run(
        "translate_pipeline",
        h.py(
            "pipelines.translate", "--input", str(sources), "--input_format", "lines", "--model_dir", str(model),
            "--output_dir", str(translated_dir), "--overwrite", "--allow_unblessed",
            "--batch_size", str(TRANSLATE_BATCH), *runner,
        ),
    )  # fmt: skip
    manifest = json.loads((translated_dir / "manifest.json").read_text())
    loops = {}
    for order in ("length", "file"):
        result_json = work / f"translate_loop_{order}.json"
        run = h.run(
            f"translate_loop_{order}_order",
            h.py(
                "bench.translation", "translate-loop", "--sources", str(sources), "--model_dir", str(model),
                "--result_json", str(result_json), "--batch_size", str(TRANSLATE_BATCH), "--order", order,
                "--compare_parquet", str(translated_dir / "translated"),
                "--output_parquet", str(work / f"translate_loop_{order}" / "translated.parquet"),
            ),
        )  # fmt: skip
        loops[order] = {"run": run, "result": json.loads(result_json.read_text())}
    translated = manifest["counts"]["translated"]
    rate = translated / pipe["wall_s"]
    sorted_loop, file_loop = loops["length"]["result"], loops["file"]["result"]
    check = sorted_loop["comparison"]
    width = json.loads((model / "model_info.json").read_text()).get("decoding", {}).get("beam_width")
    # A loop's whole command: interpreter, imports, model load, warm-up, calls, its Parquet; not the
    # comparison with the pipeline's Parquet that follows (a check, not the loop's work).
    whole = {
        order: loops[order]["run"]["wall_s"] - max(0.0, loop["result"]["process_s"] - loop["result"]["done_s"])
        for order, loop in loops.items()
    }
    figures = [
        figure(
            "translation",
            "sentences/s, pipeline (lines -> Parquet, whole command) / bare loop with length-sorted calls "
            "(whole command: start-up, model load, translate calls, Parquet)",
            f"{rate:.2f} sentences/s",
            f"{sorted_loop['rows'] / whole['length']:.2f} sentences/s",
            rate / (sorted_loop["rows"] / whole["length"]),
            f">= {GOAL_SCORE_RATE_RATIO}",
            GOAL_SCORE_RATE_RATIO,
            higher=True,
            note=f"{translated} sentences, beam {width}, calls of {TRANSLATE_BATCH}; pipeline {pipe['wall_s']:.1f} s "
            f"({h.args.runner_mode or TRANSLATION_RUNNER} runner), loop {whole['length']:.1f} s of which "
            f"{sorted_loop['loop_s']:.1f} s of translate calls",
        ),
        figure(
            "translation",
            "sentences/s, pipeline (whole command) / the same loop's timed translate calls only (start-up not counted)",
            f"{rate:.2f} sentences/s",
            f"{sorted_loop['rows_per_s']:.2f} sentences/s",
            rate / sorted_loop["rows_per_s"],
            "info",
            None,
            higher=True,
            note="the pipeline's fixed cost (imports, Beam's stages, validation, manifest) against none",
        ),
        figure(
            "translation",
            "sentences/s, pipeline (whole command) / bare loop in file order (whole command)",
            f"{rate:.2f} sentences/s",
            f"{file_loop['rows'] / whole['file']:.2f} sentences/s",
            rate / (file_loop["rows"] / whole["file"]),
            "info",
            None,
            higher=True,
            note=f"the naive script: calls of {TRANSLATE_BATCH} sentences in file order ({file_loop['loop_s']:.1f} s "
            "of calls)",
        ),
        figure(
            "translation",
            "translations equal to the bare loop's (length-sorted calls)",
            f"{check['equal_translations']} / {check['compared']} rows",
            f"{sorted_loop['rows']} loop rows",
            check["equal_translations"] / check["compared"] if check["compared"] else None,
            "== 1",
            1.0,
            higher=True,
            note=f"all equal: {check['all_equal']} (file order too: {file_loop['comparison']['all_equal']}); "
            f"max |log_prob difference| {check['max_abs_log_prob_difference']:.2g}",
        ),
    ]
    if not getattr(h.args, "keep", False):
        import shutil

        for name in ("translate_pipeline", "translate_loop_length", "translate_loop_file"):
            shutil.rmtree(work / name, ignore_errors=True)
    return {
        "figures": figures,
        "model_dir": str(model),
        "sources_file": str(sources),
        "pipeline": {**pipe, "translated": translated},
        "loops": {order: {**loop["run"], "result": loop["result"]} for order, loop in loops.items()},
    }


def run_benchmarks(args: argparse.Namespace) -> dict:
    """`run`: the translation benchmark alone; writes WORK_DIR/results.json and results.md."""
    from bench import run as bench_run
    from bench.measure import machine_info

    flags = ["--work_dir", args.work_dir, *(["--quick"] if args.quick else []), *(["--keep"] if args.keep else [])]
    if args.runner_mode:
        flags += ["--runner_mode", args.runner_mode]
    h = bench_run.Harness(bench_run.build_parser().parse_args(flags))
    h.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = {"mode": "quick" if args.quick else "full", "machine": machine_info()}
    results["benchmarks"] = {"translation": bench_translation(h)}
    results["commands"] = h.commands
    results["total_wall_s"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    (h.work / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    table = figures_markdown(results["benchmarks"]["translation"]["figures"])
    (h.work / "results.md").write_text(f"# Translation benchmark ({results['mode']} run)\n\n{table}\n")
    print(table, flush=True)
    print(f"[bench] done in {results['total_wall_s']:.0f} s -> {h.work / 'results.json'}", flush=True)
    return results


# ---------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.translation", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    loop = commands.add_parser("translate-loop", help="The translate signature on in-memory batches of sentences.")
    loop.add_argument("--sources", required=True, help="Source sentences, one per line (the pipeline's `lines`).")
    loop.add_argument("--model_dir", required=True, help="Trained translation model directory (with export/).")
    loop.add_argument("--result_json", required=True, help="Where to write sentences/s, timings and the comparison.")
    loop.add_argument("--batch_size", type=int, default=TRANSLATE_BATCH, help="Sentences per call (%(default)s).")
    loop.add_argument(
        "--order",
        choices=["file", "length"],
        default="length",
        help="file: calls in file order; length: the input sorted by characters first (default: %(default)s).",
    )
    loop.add_argument("--output_parquet", default=None, help="Write the loop's rows to this Parquet file.")
    loop.add_argument("--compare_parquet", default=None, help="The pipeline's output: compare translations by id.")
    bench = commands.add_parser("run", help="Build what is missing, time the pipeline and the loops, write results.")
    bench.add_argument("--work_dir", required=True, help="Scratch directory (model, inputs, outputs, logs, results).")
    bench.add_argument("--quick", action="store_true", help="Slice, tiny model, few sentences: checks the harness.")
    bench.add_argument("--keep", action="store_true", help="Keep the Parquet outputs of the measured steps.")
    bench.add_argument("--runner_mode", default=None, help="bench.run's --runner_mode (default: in_process).")
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    if args.command == "run":
        run_benchmarks(args)
        return 0
    result = translate_loop(args)
    Path(args.result_json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.result_json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "comparison"}), flush=True)
    if "comparison" in result:
        print(json.dumps(result["comparison"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
